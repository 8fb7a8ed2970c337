/* resnet_plot - training curves from a resnet_dist metrics file to PNG. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "plot.h"
#include "version.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: resnet_plot METRICS.jsonl [-o curves.png] [--title TEXT] [--gnuplot-dir DIR]\n"
                 "  -o, --output FILE   PNG to write [curves.png]\n"
                 "  --title TEXT        plot title [the metrics file name]\n"
                 "  --gnuplot-dir DIR   also keep the gnuplot script and its data in DIR, to\n"
                 "                      restyle: gnuplot -c DIR/plot.gp OUT.png TITLE DIR\n"
                 "  --help, --version\n"
                 "Draws train, validation and test loss and top-1/top-5 error over epochs\n"
                 "(steps on the top axis) and the learning rate on a log scale, marking\n"
                 "every LR change; records are sorted by step. Top-5 is left out when it is\n"
                 "never above 0 (5 classes or fewer). Needs gnuplot.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"title", required_argument, NULL, 't'},
                                         {"gnuplot-dir", required_argument, NULL, 'g'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    const char *out = "curves.png", *title = NULL, *keep_dir = NULL;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 't': title = optarg; break;
        case 'g': keep_dir = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'v': printf("resnet_plot %s (resnet-dist)\n", RESNET_VERSION); return 0;
        default:
            fprintf(stderr, "error: unknown flag '%s' (see --help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "error: give exactly one metrics file (see --help)\n");
        return EXIT_USAGE;
    }
    Status st = {0};
    if (plot_metrics(argv[optind], out, title ? title : argv[optind], keep_dir, &st) != 0) {
        fprintf(stderr, "error: %s\n", st.msg);
        return st.code;
    }
    printf("wrote %s\n", out);
    return 0;
}
