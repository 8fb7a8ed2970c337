/*
 * test_loader.c - the background loader on small files written by h5py:
 *   - training batches are exactly what the sampler's indices, direct
 *     reads (dataset_read_image) and augment_sample give for the same steps,
 *     for raw, compressed-chunk raw and JPEG files, 1 to 3 threads, from step
 *     0 and resumed mid-epoch, with random erasing too;
 *   - the ranks' batches of W = 2 and 3 concatenate to the W = 1 batch;
 *   - evaluation batches are the centre crops of a naive reference over the
 *     rank's range, the last one short, then n = 0, never erased;
 *   - a corrupt JPEG record comes back from loader_next_batch as a code-2
 *     Status naming the file, the split and the index, at the step that
 *     holds it; a missing file or a bad label fails loader_create;
 *   - loader_next_batch reports the time it waited; loader_free stops
 *     threads that are busy or waiting.
 */
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "augment.h"
#include "common/testutil.h"
#include "dataset.h"
#include "h5lock.h"
#include "loader.h"
#include "sampler.h"
#include "timer.h"

static char g_dir[512];

static const char *g_script =
    "import io, os, sys\n"
    "import h5py, numpy as np\n"
    "from PIL import Image\n"
    "out = sys.argv[1]\n"
    "rng = np.random.default_rng(11)\n"
    "def attrs(f, enc):\n"
    "    f.attrs['resnet_dataset_version'] = 1\n"
    "    f.attrs['num_classes'] = 5\n"
    "    f.attrs['mean'] = np.array([0.485, 0.456, 0.406])\n"
    "    f.attrs['std'] = np.array([0.229, 0.224, 0.225])\n"
    "    f.attrs['encoding'] = enc\n"
    "raw = {s: (rng.integers(0, 256, (n, 20, 24, 3), dtype=np.uint8),\n"
    "           rng.integers(0, 5, n, dtype=np.int32)) for s, n in (('train', 23), ('val', 7))}\n"
    "def write_raw(path, **kw):\n"
    "    with h5py.File(path, 'w') as f:\n"
    "        attrs(f, 'raw')\n"
    "        for s, (img, lab) in raw.items():\n"
    "            f.create_dataset(s + '/images', data=img, **kw)\n"
    "            f[s + '/labels'] = lab\n"
    "write_raw(os.path.join(out, 'raw.h5'), chunks=(1, 20, 24, 3))\n"
    "write_raw(os.path.join(out, 'raw_gzip.h5'), chunks=(4, 10, 24, 3), compression='gzip')\n"
    "def jpegs(n):\n"
    "    blobs = []\n"
    "    for i in range(n):\n"
    "        h, w = 18 + (i * 5) % 13, 18 + (i * 7) % 11\n"
    "        y, x = np.mgrid[0:h, 0:w]\n"
    "        img = np.stack([x * 9, y * 11, (x + y) * 5], -1) + rng.integers(0, 40, (h, w, 3))\n"
    "        buf = io.BytesIO()\n"
    "        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, 'JPEG', quality=90)\n"
    "        blobs.append(buf.getvalue())\n"
    "    return blobs\n"
    "def write_jpeg(path, corrupt=None, cut=None):\n"
    "    with h5py.File(path, 'w') as f:\n"
    "        attrs(f, 'jpeg')\n"
    "        for s, n in (('train', 12), ('val', 5)):\n"
    "            blobs = jpegs(n)\n"
    "            if s == 'train' and corrupt is not None:\n"
    "                blobs[corrupt] = bytes(len(blobs[corrupt]))\n"
    "            if s == 'train' and cut is not None:\n"
    "                blobs[cut] = blobs[cut][:300]\n"
    "            f[s + '/jpeg'] = np.frombuffer(b''.join(blobs), np.uint8)\n"
    "            f[s + '/offsets'] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)\n"
    "            f[s + '/labels'] = rng.integers(0, 5, n, dtype=np.int32)\n"
    "write_jpeg(os.path.join(out, 'jpeg.h5'))\n"
    "write_jpeg(os.path.join(out, 'bad_jpeg.h5'), corrupt=5)\n"
    "write_jpeg(os.path.join(out, 'cut_jpeg.h5'), cut=5)\n"
    "write_raw(os.path.join(out, 'bad_label.h5'))\n"
    "with h5py.File(os.path.join(out, 'bad_label.h5'), 'r+') as f:\n"
    "    f['train/labels'][3] = 9\n";

static int group_setup(void **state)
{
    (void)state;
    h5_quiet();
    testutil_tmpdir(g_dir, sizeof g_dir, "loader");
    char script[1024], cmd[4096];
    testutil_join(script, sizeof script, g_dir, "gen_loader.py");
    FILE *f = fopen(script, "w");
    if (!f || fputs(g_script, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", script);
        return -1;
    }
    snprintf(cmd, sizeof cmd, "%s '%s' '%s'", testutil_python("h5py numpy PIL"), script, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "`%s` failed\n", cmd);
        return -1;
    }
    return 0;
}

static void fixture(char *out, size_t len, const char *name)
{
    testutil_join(out, len, g_dir, name);
}

static LoaderConfig train_config(const char *path, int crop, AugMode aug, int64_t batch,
                                 int rank, int world, int64_t start, int threads)
{
    return (LoaderConfig){.path = path, .split = SPLIT_TRAIN, .mode = LOADER_TRAIN, .crop = crop,
                          .aug = aug, .batch = batch, .rank = rank, .world = world, .seed = 77,
                          .drop_last = 1, .start_step = start, .threads = threads};
}

static Loader *create_ok(const LoaderConfig *cfg)
{
    Loader *l = NULL;
    Status st = {0};
    if (loader_create(&l, cfg, &st) != 0)
        fail_msg("loader_create(%s): %s", cfg->path, st.msg);
    return l;
}

/* What the loader should deliver for `step`, made single-threaded from the
 * public pieces: out (local batch, C, crop, crop), labels (local batch). */
static void direct_batch(Dataset *d, const LoaderConfig *cfg, int64_t step, float *out,
                         int32_t *labels)
{
    Sampler s;
    sampler_init(&s, dataset_count(d, cfg->split), cfg->batch, cfg->rank, cfg->world,
                 cfg->seed, cfg->drop_last);
    int lb = sampler_local_batch(&s);
    int64_t *idx = malloc((size_t)lb * sizeof *idx);
    sampler_step_indices(&s, step, idx);
    DatasetImage img = {0};
    AugScratch aug = {0};
    size_t image = (size_t)d->channels * cfg->crop * cfg->crop;
    for (int i = 0; i < lb; i++) {
        Status st = {0};
        if (dataset_read_image(d, cfg->split, idx[i], &img, &st) != 0)
            fail_msg("%s", st.msg);
        augment_sample(cfg->aug, cfg->erase, cfg->crop, cfg->seed, sampler_epoch(&s, step),
                       sampler_position(&s, step) + i, img.px, img.h, img.w, img.c,
                       (const float (*)[256])d->norm.lut, &aug, out + (size_t)i * image);
        labels[i] = dataset_labels(d, cfg->split)[idx[i]];
    }
    augment_scratch_free(&aug);
    dataset_image_free(&img);
    free(idx);
    sampler_free(&s);
}

/* The batches of a loader made with cfg for `steps` steps equal
 * direct_batch's, bit for bit. */
static void check_config(const char *name, const LoaderConfig *cfg, int steps)
{
    Dataset d;
    Status st = {0};
    if (dataset_open(&d, cfg->path, &st) != 0)
        fail_msg("%s", st.msg);
    Loader *l = create_ok(cfg);
    int64_t start = cfg->start_step;
    int lb = loader_local_batch(l);
    size_t n = (size_t)lb * d.channels * cfg->crop * cfg->crop;
    float *want = malloc(n * sizeof *want);
    int32_t *want_labels = malloc((size_t)lb * sizeof *want_labels);
    for (int k = 0; k < steps; k++) {
        LoaderBatch b;
        double called = timer_now();
        assert_int_equal(loader_next_batch(l, &b, &st), 0);
        double took = timer_now() - called;
        assert_int_equal(b.step, start + k);
        assert_int_equal(b.n, lb);
        /* the reported wait is part of this call's own time */
        assert_true(b.wait >= 0 && b.wait <= took);
        assert_true(((uintptr_t)b.images & 63) == 0);
        direct_batch(&d, cfg, start + k, want, want_labels);
        char what[256];
        snprintf(what, sizeof what, "%s %s erase %g rank %d/%d step %lld threads %d", name,
                 augment_name(cfg->aug), cfg->erase, cfg->rank, cfg->world,
                 (long long)(start + k), cfg->threads);
        assert_close(b.images, want, n, 0, 0, what);
        assert_memory_equal(b.labels, want_labels, (size_t)lb * sizeof *want_labels);
    }
    loader_free(l);
    free(want_labels);
    free(want);
    dataset_close(&d);
}

static void check_against_direct(const char *name, int crop, AugMode aug, int64_t batch,
                                 int rank, int world, int64_t start, int steps, int threads)
{
    char path[1024];
    fixture(path, sizeof path, name);
    LoaderConfig cfg = train_config(path, crop, aug, batch, rank, world, start, threads);
    check_config(name, &cfg, steps);
}

static void test_train_raw(void **state)
{
    (void)state;
    /* 23 images, batch 4: 5 steps per epoch; 12 steps cross two epochs */
    check_against_direct("raw.h5", 16, AUG_RRC, 4, 0, 1, 0, 12, 1);
    check_against_direct("raw.h5", 16, AUG_CIFAR, 4, 1, 2, 3, 8, 2);
    check_against_direct("raw.h5", 12, AUG_PAPER, 6, 2, 3, 7, 5, 3);
    check_against_direct("raw.h5", 20, AUG_NONE, 4, 0, 2, 1, 3, 1);
}

static void test_train_gzip_chunks(void **state)
{
    (void)state;
    check_against_direct("raw_gzip.h5", 16, AUG_RRC, 4, 1, 2, 2, 10, 2);
}

static void test_train_jpeg(void **state)
{
    (void)state;
    check_against_direct("jpeg.h5", 16, AUG_RRC, 4, 0, 1, 0, 7, 2);
    check_against_direct("jpeg.h5", 14, AUG_PAPER, 3, 1, 3, 5, 4, 1);
}

/* Random erasing rides in the training batches exactly as augment_sample
 * makes it, with any mode (resumed mid-epoch, 2 threads). */
static void test_train_erase(void **state)
{
    (void)state;
    char path[1024];
    fixture(path, sizeof path, "raw.h5");
    const AugMode modes[] = {AUG_RRC, AUG_NONE};
    for (int m = 0; m < 2; m++) {
        LoaderConfig cfg = train_config(path, 16, modes[m], 4, 1, 2, 3, 2);
        cfg.erase = m ? 1.0 : 0.5;
        check_config("raw.h5", &cfg, 6);
    }
}

/* The chunk cache: none for unfiltered data (HDF5 reads just the image's
 * bytes), room for a few compressed chunks at least and for all of them at
 * most; reads are unchanged by the reopened dataset. */
static void test_chunk_cache(void **state)
{
    (void)state;
    const char *names[] = {"raw.h5", "jpeg.h5", "raw_gzip.h5"};
    for (int i = 0; i < 3; i++) {
        char path[1024];
        fixture(path, sizeof path, names[i]);
        Dataset d;
        Status st = {0};
        assert_int_equal(dataset_open(&d, path, &st), 0);
        DatasetImage before = {0}, after = {0};
        assert_int_equal(dataset_read_image(&d, SPLIT_TRAIN, 9, &before, &st), 0);
        size_t bytes = dataset_set_random_access(&d, SPLIT_TRAIN, (size_t)1 << 20);
        size_t chunk = 4 * 10 * 24 * 3, all = 23 * 20 * 24 * 3;
        if (i < 2)
            assert_int_equal(bytes, 0);
        else /* 23 images in 6 x 2 chunks: the budget is more than all of them */
            assert_int_equal(bytes, all + chunk);
        /* a tiny budget still holds the chunks of a few images, capped by
         * what /val holds */
        size_t few = 4 * 2 * chunk, val = 7 * 20 * 24 * 3 + chunk;
        assert_int_equal(dataset_set_random_access(&d, SPLIT_VAL, 1),
                         i < 2 ? 0 : few < val ? few : val);
        assert_int_equal(dataset_read_image(&d, SPLIT_TRAIN, 9, &after, &st), 0);
        assert_true(before.h == after.h && before.w == after.w && before.c == after.c);
        assert_memory_equal(before.px, after.px, (size_t)after.h * after.w * after.c);
        dataset_image_free(&before);
        dataset_image_free(&after);
        dataset_close(&d);
    }
}

/* docs/design.md invariant 2 end to end: the same images, augmented the same
 * way, whatever the number of ranks. */
static void test_ranks_concatenate(void **state)
{
    (void)state;
    char path[1024];
    fixture(path, sizeof path, "raw.h5");
    const int crop = 16, batch = 6, steps = 9;
    size_t image = 3 * crop * crop;
    LoaderConfig one = train_config(path, crop, AUG_RRC, batch, 0, 1, 2, 2);
    for (int world = 2; world <= 3; world++) {
        Loader *l1 = create_ok(&one), *l[3];
        for (int r = 0; r < world; r++) {
            LoaderConfig c = train_config(path, crop, AUG_RRC, batch, r, world, 2, 1);
            l[r] = create_ok(&c);
        }
        for (int k = 0; k < steps; k++) {
            float *x1;
            int32_t *y1;
            loader_next(l1, &x1, &y1);
            size_t off = 0;
            for (int r = 0; r < world; r++) {
                float *x;
                int32_t *y;
                loader_next(l[r], &x, &y);
                int lb = loader_local_batch(l[r]);
                assert_memory_equal(x, x1 + off * image, lb * image * sizeof *x);
                assert_memory_equal(y, y1 + off, lb * sizeof *y);
                off += (size_t)lb;
            }
            assert_int_equal(off, batch);
        }
        for (int r = 0; r < world; r++)
            loader_free(l[r]);
        loader_free(l1);
    }
}

/* The naive reference of evaluation's input: image index of split,
 * centre-cropped as torchvision's CenterCrop places the window
 * (round((size - crop) / 2), halves to even) and normalised as ToTensor +
 * Normalize compute it in float32. */
static void centre_crop_reference(Dataset *d, DatasetSplit split, int64_t index, int crop,
                                  float *out)
{
    DatasetImage img = {0};
    Status st = {0};
    if (dataset_read_image(d, split, index, &img, &st) != 0)
        fail_msg("image %lld: %s", (long long)index, st.msg);
    int top = (int)nearbyint((img.h - crop) / 2.0), left = (int)nearbyint((img.w - crop) / 2.0);
    for (int c = 0; c < img.c; c++)
        for (int y = 0; y < crop; y++)
            for (int x = 0; x < crop; x++) {
                uint8_t px = img.px[((size_t)(top + y) * img.w + left + x) * img.c + c];
                out[((size_t)c * crop + y) * crop + x] =
                    ((float)px / 255.0f - (float)d->mean[c]) / (float)d->std[c];
            }
    dataset_image_free(&img);
}

/* Evaluation: rank r's range in order, centre crops as the reference makes
 * them, the last batch short, then n = 0; a random erasing probability in
 * the config is not applied. */
static void check_eval(const char *name, int crop)
{
    char path[1024];
    fixture(path, sizeof path, name);
    Dataset d;
    Status st = {0};
    assert_int_equal(dataset_open(&d, path, &st), 0);
    int64_t v = dataset_count(&d, SPLIT_VAL);
    size_t image = (size_t)d.channels * crop * crop;
    float *want = malloc((size_t)v * image * sizeof *want);
    const int32_t *labels = dataset_labels(&d, SPLIT_VAL);
    for (int64_t i = 0; i < v; i++)
        centre_crop_reference(&d, SPLIT_VAL, i, crop, want + (size_t)i * image);
    for (int world = 1; world <= 3; world++) {
        for (int rank = 0; rank < world; rank++) {
            LoaderConfig c = {.path = path, .split = SPLIT_VAL, .mode = LOADER_EVAL,
                              .crop = crop, .erase = 1.0, .batch = 2, .rank = rank,
                              .world = world, .threads = 2};
            Loader *l = create_ok(&c);
            int64_t first, count;
            sampler_eval_range(v, rank, world, &first, &count);
            assert_int_equal(loader_steps(l), (count + 1) / 2);
            int64_t got = 0;
            LoaderBatch b;
            for (;;) {
                assert_int_equal(loader_next_batch(l, &b, &st), 0);
                if (b.n == 0)
                    break;
                assert_int_equal(b.n, count - got < 2 ? count - got : 2);
                assert_close(b.images, want + (size_t)(first + got) * image, b.n * image, 0, 0,
                             name);
                assert_memory_equal(b.labels, labels + first + got, b.n * sizeof *labels);
                got += b.n;
            }
            assert_int_equal(got, count);
            assert_int_equal(loader_next_batch(l, &b, &st), 0); /* stays at the end */
            assert_int_equal(b.n, 0);
            loader_free(l);
        }
    }
    free(want);
    dataset_close(&d);
}

static void test_eval(void **state)
{
    (void)state;
    check_eval("raw.h5", 17);
    check_eval("jpeg.h5", 16);
}

/* Image 5 of /train/jpeg is zeros: the batch holding it fails with the
 * file, split and index; the batches before it arrive. */
static void test_corrupt_jpeg(void **state)
{
    (void)state;
    char path[1024];
    fixture(path, sizeof path, "bad_jpeg.h5");
    LoaderConfig c = train_config(path, 12, AUG_RRC, 3, 0, 1, 0, 2);
    Sampler s;
    sampler_init(&s, 12, 3, 0, 1, c.seed, 1);
    int64_t bad_step = -1, idx[3];
    for (int64_t k = 0; k < 4 && bad_step < 0; k++) {
        sampler_step_indices(&s, k, idx);
        for (int i = 0; i < 3; i++)
            if (idx[i] == 5)
                bad_step = k;
    }
    sampler_free(&s);
    assert_true(bad_step >= 0);
    Loader *l = create_ok(&c);
    LoaderBatch b;
    Status st = {0};
    for (int64_t k = 0; k < bad_step; k++)
        assert_int_equal(loader_next_batch(l, &b, &st), 0);
    assert_int_equal(loader_next_batch(l, &b, &st), EXIT_USAGE);
    assert_non_null(strstr(st.msg, path));
    assert_non_null(strstr(st.msg, "/train/jpeg image 5 "));
    assert_null(b.images);
    loader_free(l);

    /* the same through eval order, and directly */
    Dataset d;
    memset(&st, 0, sizeof st);
    assert_int_equal(dataset_open(&d, path, &st), 0);
    DatasetImage img = {0};
    assert_int_equal(dataset_read_image(&d, SPLIT_TRAIN, 4, &img, &st), 0);
    assert_int_equal(dataset_read_image(&d, SPLIT_TRAIN, 5, &img, &st), EXIT_USAGE);
    assert_non_null(strstr(st.msg, "/train/jpeg image 5 is not a JPEG"));
    dataset_image_free(&img);
    dataset_close(&d);

    /* A record cut inside its header, then a good one with the same
     * decoder: nothing of the failure may stay. */
    fixture(path, sizeof path, "cut_jpeg.h5");
    memset(&st, 0, sizeof st);
    assert_int_equal(dataset_open(&d, path, &st), 0);
    assert_int_equal(dataset_read_image(&d, SPLIT_TRAIN, 5, &img, &st), EXIT_USAGE);
    assert_non_null(strstr(st.msg, "/train/jpeg image 5 does not decode"));
    memset(&st, 0, sizeof st);
    if (dataset_read_image(&d, SPLIT_TRAIN, 6, &img, &st) != 0)
        fail_msg("image 6 after the cut one: %s", st.msg);
    dataset_image_free(&img);
    dataset_close(&d);
}

static void test_create_errors(void **state)
{
    (void)state;
    char path[1024];
    Loader *l = (Loader *)&l;
    Status st = {0};
    fixture(path, sizeof path, "no_such_file.h5");
    LoaderConfig c = train_config(path, 12, AUG_RRC, 3, 0, 1, 0, 1);
    assert_int_equal(loader_create(&l, &c, &st), EXIT_USAGE);
    assert_null(l);
    assert_non_null(strstr(st.msg, path));

    memset(&st, 0, sizeof st);
    fixture(path, sizeof path, "bad_label.h5");
    assert_int_equal(loader_create(&l, &c, &st), EXIT_USAGE);
    assert_non_null(strstr(st.msg, "/train/labels[3] = 9"));

    memset(&st, 0, sizeof st); /* drop-last with more than the data */
    fixture(path, sizeof path, "raw.h5");
    c = train_config(path, 12, AUG_RRC, 24, 0, 1, 0, 1);
    assert_int_equal(loader_create(&l, &c, &st), EXIT_USAGE);
    assert_non_null(strstr(st.msg, "--drop-last"));
    c.drop_last = 0; /* padded instead: one step of 24 from 23 images */
    l = create_ok(&c);
    assert_int_equal(loader_steps(l), 1);
    loader_free(l);
}

typedef struct {
    Loader *l;
    LoaderBatch b;
    int ret;
    double called, returned;
} Taker;

static void *take(void *arg)
{
    Taker *t = arg;
    Status st = {0};
    t->called = timer_now();
    t->ret = loader_next_batch(t->l, &t->b, &st);
    t->returned = timer_now();
    return NULL;
}

/* The workers need the HDF5 lock, held here for 0.3 s, so no batch can be
 * ready before it is released: the wait that loader_next_batch reports
 * covers the time from its call to the release, and no more than the call
 * took. */
static void test_wait_measured(void **state)
{
    (void)state;
    char path[1024];
    fixture(path, sizeof path, "raw.h5");
    LoaderConfig c = train_config(path, 16, AUG_RRC, 4, 0, 1, 0, 1);
    h5_lock();
    Loader *l = create_ok(&c); /* the lock is recursive: this thread may */
    Taker t = {.l = l};
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, take, &t), 0);
    usleep(300 * 1000);
    double released = timer_now();
    h5_unlock();
    pthread_join(tid, NULL);
    assert_int_equal(t.ret, 0);
    assert_int_equal(t.b.n, 4);
    assert_true(t.b.wait >= released - t.called - 1e-3);
    assert_true(t.b.wait <= t.returned - t.called);
    if (t.called < released)
        assert_true(t.b.wait > 0);
    for (int k = 0; k < 3; k++) {
        t.called = timer_now();
        take(&t);
        assert_int_equal(t.ret, 0);
        assert_true(t.b.wait >= 0 && t.b.wait <= t.returned - t.called);
    }
    loader_free(l);
}

/* Freeing at once, with workers mid-batch or waiting for a free slot. */
/* The threads of this process (/proc/self/task has one entry each). */
static int thread_count(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %d", &n) == 1)
            break;
    fclose(f);
    assert_true(n > 0);
    return n;
}

/* A loader freed at any moment (before its first batch, mid-epoch, while
 * its threads decode ahead) stops and joins every thread it started, and
 * the batches it handed out before were whole. */
static void test_free_anytime(void **state)
{
    (void)state;
    char path[1024];
    fixture(path, sizeof path, "jpeg.h5");
    int before = thread_count();
    for (int i = 0; i < 6; i++) {
        LoaderConfig c = train_config(path, 16, AUG_RRC, 4, 0, 1, 0, 1 + i % 3);
        c.depth = 2 + i % 3 * 2;
        Loader *l = create_ok(&c);
        assert_true(thread_count() > before);
        for (int k = 0; k < i; k++) {
            LoaderBatch b;
            Status st = {0};
            assert_int_equal(loader_next_batch(l, &b, &st), 0);
            assert_int_equal(b.step, k);
            assert_int_equal(b.n, 4);
        }
        if (i % 2)
            usleep(20 * 1000);
        loader_free(l);
        assert_int_equal(thread_count(), before);
    }
    loader_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_raw),
        cmocka_unit_test(test_train_gzip_chunks),
        cmocka_unit_test(test_train_jpeg),
        cmocka_unit_test(test_train_erase),
        cmocka_unit_test(test_chunk_cache),
        cmocka_unit_test(test_ranks_concatenate),
        cmocka_unit_test(test_eval),
        cmocka_unit_test(test_corrupt_jpeg),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_wait_measured),
        cmocka_unit_test(test_free_anytime),
    };
    return cmocka_run_group_tests_name("loader", tests, group_setup, NULL);
}
