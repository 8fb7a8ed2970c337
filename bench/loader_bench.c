/*
 * loader_bench.c - data loader throughput: images per second, and per
 * second of CPU time (per core), of read + decode + augment + normalise, for
 * a raw and a JPEG dataset of synthetic size x size images (resnet_prep
 * synthetic's pictures) cropped to crop x crop. Two measurements each:
 *   pipeline  one thread doing the work inline (read+decode and augment
 *             timed apart), the cost per core;
 *   loader    the Loader with N threads and an idle consumer, as the step
 *             loop sees it.
 * Prints a table and one JSON line per measurement (prefix "json: ").
 * Independent of resnet_dist; needs no MPI launcher.
 *
 *   loader_bench [--dir DIR] [--size 256] [--crop 224] [--images 256]
 *                [--batch 32] [--steps 24] [--threads 1] [--aug rrc]
 *                [--quality 90] [--encoding raw|jpeg|both]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <hdf5.h>

#include "augment.h"
#include "dataset.h"
#include "error.h"
#include "h5lock.h"
#include "image_io.h"
#include "loader.h"
#include "prep_synthetic.h"
#include "sampler.h"

typedef struct {
    const char *dir;
    int size, crop, images, batch, steps, threads, quality;
    AugMode aug;
    int raw, jpeg;
} BenchOptions;

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void usage_exit(const char *why)
{
    fprintf(stderr, "loader_bench: %s\nusage: loader_bench [--dir DIR] [--size 256] [--crop 224] "
            "[--images 256] [--batch 32] [--steps 24] [--threads 1] [--aug rrc|paper|cifar|none] "
            "[--quality 90] [--encoding raw|jpeg|both]\n", why);
    exit(EXIT_USAGE);
}

static void options_read(BenchOptions *o, int argc, char **argv)
{
    *o = (BenchOptions){.dir = "build/bench/loader", .size = 256, .crop = 224, .images = 256,
                        .batch = 32, .steps = 24, .threads = 1, .quality = 90, .aug = AUG_RRC,
                        .raw = 1, .jpeg = 1};
    static const struct option longs[] = {
        {"dir", 1, 0, 'd'},     {"size", 1, 0, 's'},    {"crop", 1, 0, 'c'},
        {"images", 1, 0, 'n'},  {"batch", 1, 0, 'b'},   {"steps", 1, 0, 'k'},
        {"threads", 1, 0, 't'}, {"aug", 1, 0, 'a'},     {"quality", 1, 0, 'q'},
        {"encoding", 1, 0, 'e'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'd': o->dir = optarg; break;
        case 's': o->size = atoi(optarg); break;
        case 'c': o->crop = atoi(optarg); break;
        case 'n': o->images = atoi(optarg); break;
        case 'b': o->batch = atoi(optarg); break;
        case 'k': o->steps = atoi(optarg); break;
        case 't': o->threads = atoi(optarg); break;
        case 'q': o->quality = atoi(optarg); break;
        case 'a':
            if (augment_parse(optarg, &o->aug) != 0)
                usage_exit("unknown --aug");
            break;
        case 'e':
            o->raw = strcmp(optarg, "jpeg") != 0;
            o->jpeg = strcmp(optarg, "raw") != 0;
            if (!strcmp(optarg, "raw") + !strcmp(optarg, "jpeg") + !strcmp(optarg, "both") != 1)
                usage_exit("--encoding is raw, jpeg or both");
            break;
        default: usage_exit("unknown flag");
        }
    }
    if (o->size < 8 || o->crop < 1 || o->images < o->batch || o->batch < 1 || o->steps < 1 ||
        o->threads < 1 || o->quality < 1 || o->quality > 100)
        usage_exit("bad numbers");
}

/* ------------------------------------------------------------------ */
/* the synthetic files                                                 */

static void attr_write(hid_t file, const char *name, hid_t type, int n, const void *v)
{
    hsize_t dim = (hsize_t)n;
    hid_t space = n ? (hid_t)H5_CHECK(H5Screate_simple(1, &dim, NULL))
                    : (hid_t)H5_CHECK(H5Screate(H5S_SCALAR));
    hid_t a = (hid_t)H5_CHECK(H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECK(H5Awrite(a, type, v));
    H5_CHECK(H5Aclose(a));
    H5_CHECK(H5Sclose(space));
}

static void dataset_write(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims,
                          const hsize_t *chunk, const void *data)
{
    hid_t space = (hid_t)H5_CHECK(H5Screate_simple(rank, dims, NULL));
    hid_t lcpl = (hid_t)H5_CHECK(H5Pcreate(H5P_LINK_CREATE));
    H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1));
    hid_t dcpl = (hid_t)H5_CHECK(H5Pcreate(H5P_DATASET_CREATE));
    if (chunk)
        H5_CHECK(H5Pset_chunk(dcpl, rank, chunk));
    hid_t ds = (hid_t)H5_CHECK(H5Dcreate2(file, name, type, space, lcpl, dcpl, H5P_DEFAULT));
    H5_CHECK(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5_CHECK(H5Dclose(ds));
    H5_CHECK(H5Pclose(dcpl));
    H5_CHECK(H5Pclose(lcpl));
    H5_CHECK(H5Sclose(space));
}

/* Writes DIR/<encoding>_<size>.h5 with `images` train and 8 val images in
 * the documented layout (raw chunked one image per chunk, as resnet_prep
 * does; jpeg in 4 MiB chunks). Returns the mean JPEG size in bytes (0 for raw). */
static double dataset_make(const BenchOptions *o, int jpeg, const char *path)
{
    SynthSpec spec = {.classes = 10, .size = o->size, .channels = 3, .seed = 1};
    ImageCodec *codec = image_codec_new();
    Image img = {0};
    size_t image = (size_t)o->size * o->size * 3;
    hid_t file = (hid_t)H5_CHECK(H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    const char *enc = jpeg ? "jpeg" : "raw";
    hid_t str = (hid_t)H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(str, strlen(enc)));
    attr_write(file, "encoding", str, 0, enc);
    H5_CHECK(H5Tclose(str));
    int64_t version = 1, classes = spec.classes;
    double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    attr_write(file, "resnet_dataset_version", H5T_NATIVE_INT64, 0, &version);
    attr_write(file, "num_classes", H5T_NATIVE_INT64, 0, &classes);
    attr_write(file, "mean", H5T_NATIVE_DOUBLE, 3, mean);
    attr_write(file, "std", H5T_NATIVE_DOUBLE, 3, std);
    double mean_bytes = 0;
    for (int split = 0; split < 2; split++) {
        int n = split == 0 ? o->images : 8;
        const char *sn = split == 0 ? "train" : "val";
        int32_t *labels = xmalloc((size_t)n * sizeof *labels);
        uint8_t *pixels = jpeg ? NULL : xmalloc((size_t)n * image);
        uint8_t *bytes = NULL;
        int64_t *offsets = xcalloc((size_t)n + 1, sizeof *offsets);
        size_t used = 0, cap = 0;
        for (int i = 0; i < n; i++) {
            labels[i] = prep_synthetic_image(&spec, split, (size_t)i, &img);
            if (!jpeg) {
                memcpy(pixels + (size_t)i * image, img.px, image);
                continue;
            }
            uint8_t *out;
            size_t size;
            char why[256];
            CHECK(image_encode_jpeg(codec, &img, o->quality, &out, &size, why, sizeof why) == 0,
                  "%s", why);
            if (used + size > cap) {
                cap = (used + size) * 2;
                bytes = xrealloc(bytes, cap);
            }
            memcpy(bytes + used, out, size);
            free(out);
            used += size;
            offsets[i + 1] = (int64_t)used;
        }
        char name[64];
        if (jpeg) {
            hsize_t total = used, chunk = used < ((size_t)4 << 20) ? used : (hsize_t)4 << 20;
            hsize_t noff = (hsize_t)n + 1;
            snprintf(name, sizeof name, "/%s/jpeg", sn);
            dataset_write(file, name, H5T_NATIVE_UINT8, 1, &total, &chunk, bytes);
            snprintf(name, sizeof name, "/%s/offsets", sn);
            dataset_write(file, name, H5T_NATIVE_INT64, 1, &noff, NULL, offsets);
            if (split == 0)
                mean_bytes = (double)used / n;
        } else {
            hsize_t dims[4] = {(hsize_t)n, (hsize_t)o->size, (hsize_t)o->size, 3};
            hsize_t chunk[4] = {1, (hsize_t)o->size, (hsize_t)o->size, 3};
            snprintf(name, sizeof name, "/%s/images", sn);
            dataset_write(file, name, H5T_NATIVE_UINT8, 4, dims, chunk, pixels);
        }
        hsize_t nl = (hsize_t)n;
        snprintf(name, sizeof name, "/%s/labels", sn);
        dataset_write(file, name, H5T_NATIVE_INT32, 1, &nl, NULL, labels);
        free(labels);
        free(pixels);
        free(bytes);
        free(offsets);
    }
    H5_CHECK(H5Fclose(file));
    image_free(&img);
    image_codec_free(codec);
    return mean_bytes;
}

/* ------------------------------------------------------------------ */
/* measurements                                                        */

static void report(const BenchOptions *o, const char *enc, const char *what, int threads,
                   long images, double wall, double cpu, double read_s, double aug_s,
                   double jpeg_bytes)
{
    printf("%-5s %-8s threads %d: %8.1f img/s  %8.1f img/s per core (cpu %.2f s)", enc, what,
           threads, images / wall, images / cpu, cpu);
    if (read_s > 0)
        printf("  read+decode %.2f ms/img, augment %.2f ms/img", 1e3 * read_s / images,
               1e3 * aug_s / images);
    printf("\n");
    printf("json: {\"bench\":\"loader\",\"encoding\":\"%s\",\"mode\":\"%s\",\"aug\":\"%s\","
           "\"size\":%d,\"crop\":%d,\"threads\":%d,\"images\":%ld,\"img_per_s\":%.2f,"
           "\"img_per_cpu_s\":%.2f,\"read_ms\":%.4f,\"augment_ms\":%.4f,\"jpeg_bytes\":%.0f}\n",
           enc, what, augment_name(o->aug), o->size, o->crop, threads, images, images / wall,
           images / cpu, read_s > 0 ? 1e3 * read_s / images : 0.0,
           aug_s > 0 ? 1e3 * aug_s / images : 0.0, jpeg_bytes);
    fflush(stdout);
}

/* One thread, inline: sampler order, read + decode, augment. */
static void bench_pipeline(const BenchOptions *o, const char *path, const char *enc,
                           double jpeg_bytes)
{
    Dataset d;
    Status st = {0};
    CHECK(dataset_open(&d, path, &st) == 0, "%s", st.msg);
    dataset_set_random_access(&d, SPLIT_TRAIN, LOADER_CACHE_DEFAULT);
    Sampler s;
    sampler_init(&s, o->images, o->batch, 0, 1, 5, 1);
    int64_t *idx = xmalloc((size_t)o->batch * sizeof *idx);
    float *out = xaligned_alloc((size_t)o->batch * 3 * o->crop * o->crop * sizeof *out);
    DatasetImage img = {0};
    AugScratch aug = {0};
    /* warm the page cache and the buffers: one pass over the images */
    for (int64_t i = 0; i < o->images; i++)
        CHECK(dataset_read_image(&d, SPLIT_TRAIN, i, &img, &st) == 0, "%s", st.msg);
    double read_s = 0, aug_s = 0, wall0 = clock_s(CLOCK_MONOTONIC);
    double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int k = 0; k < o->steps; k++) {
        sampler_step_indices(&s, k, idx);
        for (int i = 0; i < o->batch; i++) {
            double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            CHECK(dataset_read_image(&d, SPLIT_TRAIN, idx[i], &img, &st) == 0, "%s", st.msg);
            double t1 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            augment_sample(o->aug, 0.0, o->crop, 5, sampler_epoch(&s, k),
                           sampler_position(&s, k) + i, img.px, img.h, img.w, img.c,
                           (const float (*)[256])d.norm.lut, &aug,
                           out + (size_t)i * 3 * o->crop * o->crop);
            read_s += t1 - t0;
            aug_s += clock_s(CLOCK_THREAD_CPUTIME_ID) - t1;
        }
    }
    double cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    double wall = clock_s(CLOCK_MONOTONIC) - wall0;
    report(o, enc, "pipeline", 1, (long)o->steps * o->batch, wall, cpu, read_s, aug_s,
           jpeg_bytes);
    augment_scratch_free(&aug);
    dataset_image_free(&img);
    free(out);
    free(idx);
    sampler_free(&s);
    dataset_close(&d);
}

/* The Loader with o->threads threads and a consumer that only takes batches. */
static void bench_loader(const BenchOptions *o, const char *path, const char *enc,
                         double jpeg_bytes)
{
    LoaderConfig cfg = {.path = path, .split = SPLIT_TRAIN, .mode = LOADER_TRAIN,
                        .crop = o->crop, .aug = o->aug, .batch = o->batch, .rank = 0,
                        .world = 1, .seed = 5, .drop_last = 1, .threads = o->threads};
    Loader *l;
    Status st = {0};
    CHECK(loader_create(&l, &cfg, &st) == 0, "%s", st.msg);
    float *x;
    int32_t *y;
    loader_next(l, &x, &y); /* start-up: opening, first batch */
    double wall0 = clock_s(CLOCK_MONOTONIC), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), wait = 0;
    for (int k = 0; k < o->steps; k++)
        wait += loader_next(l, &x, &y);
    double cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    double wall = clock_s(CLOCK_MONOTONIC) - wall0;
    report(o, enc, "loader", o->threads, (long)o->steps * o->batch, wall, cpu, 0, 0, jpeg_bytes);
    printf("      (the consumer waited %.0f%% of the time)\n", 100 * wait / wall);
    loader_free(l);
}

static void mkdir_p(const char *dir)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *c = buf + 1; *c; c++) {
        if (*c == '/') {
            *c = '\0';
            mkdir(buf, 0755);
            *c = '/';
        }
    }
    mkdir(buf, 0755);
}

int main(int argc, char **argv)
{
    BenchOptions o;
    options_read(&o, argc, argv);
    h5_quiet();
    mkdir_p(o.dir);
    printf("loader_bench: %d synthetic %dx%d images, crop %d, aug %s, batch %d, %d steps\n",
           o.images, o.size, o.size, o.crop, augment_name(o.aug), o.batch, o.steps);
    for (int jpeg = 0; jpeg <= 1; jpeg++) {
        if (jpeg ? !o.jpeg : !o.raw)
            continue;
        const char *enc = jpeg ? "jpeg" : "raw";
        char path[1024];
        snprintf(path, sizeof path, "%s/%s_%d.h5", o.dir, enc, o.size);
        double jpeg_bytes = dataset_make(&o, jpeg, path);
        if (jpeg)
            printf("jpeg: quality %d, %.1f KB per image\n", o.quality, jpeg_bytes / 1024);
        bench_pipeline(&o, path, enc, jpeg_bytes);
        bench_loader(&o, path, enc, jpeg_bytes);
    }
    return 0;
}
