/* eval_only.c - an evaluation run takes its model from the checkpoint. */
#include "eval_only.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "resnet.h"

/* A flag the user gave that the checkpoint contradicts: one line naming the
 * file, the attribute and both values. */
static void contradiction(Status *st, const char *path, const char *attr, const char *in_file,
                          const char *flag, const char *given)
{
    status_set(st, EXIT_USAGE, "%s: root attribute %s is %s, but %s %s was given (leave the "
               "flag out: --eval-only takes it from the checkpoint)", path, attr, in_file, flag,
               given);
}

static void compare_int(Status *st, const char *path, const char *attr, int in_file,
                        const char *flag, int given)
{
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", in_file);
    snprintf(b, sizeof b, "%d", given);
    if (in_file && given && in_file != given && !st->code)
        contradiction(st, path, attr, a, flag, b);
}

void eval_only_adopt_checkpoint(Options *o, const DistInfo *dist, CheckpointSpec *s,
                                char *crop_from, size_t crop_from_len)
{
    const char *path = o->init_from;
    Status st = {0};
    memset(s, 0, sizeof *s);
    s->small_stem = -1;
    s->step = s->epoch = -1;
    if (!path)
        return;
    if (dist->rank == 0) {
        checkpoint_read_spec(path, s, &st);
        checkpoint_spec_free(s); /* the names are the tools' business, not evaluation's */
    }
    status_agree(&st);
    MPI_CHECK(MPI_Bcast(s, sizeof *s, MPI_BYTE, 0, MPI_COMM_WORLD));
    if (s->arch[0] && o->arch_given && strcmp(s->arch, o->arch) != 0)
        contradiction(&st, path, "arch", s->arch, "--arch", o->arch);
    if (s->small_stem >= 0 && o->stem_given && s->small_stem != o->small_stem && !st.code)
        contradiction(&st, path, "stem", s->small_stem ? "small" : "imagenet", "--stem",
                      o->small_stem ? "small" : "imagenet");
    compare_int(&st, path, "num_classes", s->num_classes, "--num-classes", o->num_classes);
    compare_int(&st, path, "input_size", s->input_size, "--crop", o->crop);
    status_agree(&st);
    if (s->arch[0] && !arch_exists(s->arch))
        status_set(&st, EXIT_USAGE, "%s: root attribute arch is %s, an architecture this "
                   "program does not have", path, s->arch);
    status_agree(&st);
    if (s->arch[0])
        snprintf(o->arch, sizeof o->arch, "%s", s->arch);
    if (s->small_stem >= 0)
        o->small_stem = s->small_stem;
    if (s->input_size) {
        o->crop = s->input_size;
        snprintf(crop_from, crop_from_len, "%s's input_size", path);
    }
}

static int same_stats(const CheckpointSpec *s, const Dataset *d)
{
    for (int c = 0; c < s->channels; c++)
        if (fabs(s->mean[c] - d->mean[c]) > 1e-6 || fabs(s->std[c] - d->std[c]) > 1e-6)
            return 0;
    return 1;
}

void eval_only_check_data(const Options *o, const CheckpointSpec *s, const Dataset *data,
                          int num_classes)
{
    const char *path = o->init_from;
    Status st = {0};
    if (!path || !data)
        return;
    if (s->num_classes && s->num_classes != num_classes)
        status_set(&st, EXIT_USAGE, "%s: root attribute num_classes is %d, but %s has %d "
                   "classes", path, s->num_classes, o->data, num_classes);
    status_agree(&st);
    if (s->channels && s->channels == data->channels && !same_stats(s, data))
        log_warn("%s: its mean/std (%g, ...) differ from those of %s (%g, ...); the images are "
                 "normalised with the dataset's", path, s->mean[0], o->data, data->mean[0]);
}
