/*
 * testutil.h - helpers shared by the unit tests: float comparison that
 * names the worst element, scratch directories under build/tmp, the python
 * interpreter that has torch/h5py for fixture scripts, and small Params
 * registries with torchvision names. Linked into every test binary; local.
 */
#ifndef RESNET_TESTUTIL_H
#define RESNET_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"

/* Fails the running CMocka test unless |a - b| <= atol + rtol * |b| for
 * every element (NaN matches only NaN), printing the worst element. */
void assert_close(const float *a, const float *b, size_t n, double atol, double rtol,
                  const char *name);

/* Makes an empty directory $BUILD/tmp/<name> (BUILD defaults to build),
 * removing what an earlier run left there; its path goes to out. */
void testutil_tmpdir(char *out, size_t len, const char *name);
/* Removes a directory tree made by testutil_tmpdir. */
void testutil_rmtree(const char *path);
/* out = dir/file; fails the test when it does not fit. */
void testutil_join(char *out, size_t len, const char *dir, const char *file);

/* A python3 that can import every module named in the space-separated
 * list: $PYTHON, then python3, then /usr/bin/python3. Fails the test when
 * none can. The result is cached per module list. */
const char *testutil_python(const char *modules);
/* Runs tests/fixtures/<script> with that python and the formatted
 * arguments (the caller quotes them); returns the script's exit status. */
int testutil_run_fixture(const char *modules, const char *script, const char *args_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Deterministic values in [-1, 1) from seed (a 32-bit LCG). */
void testutil_fill(float *x, size_t n, uint32_t seed);

/* Registers a tensor of 1 to 4 dimensions in the plain PyTorch layout
 * (a, ab, abc, abcd); returns its index. */
int testutil_param_plain(Params *p, const char *name, ParamKind kind, int ndims,
                         const int64_t *dims);

/* A tiny network with torchvision names, the same as the "tiny" model of
 * tests/fixtures/ckpt_interop.py:
 *   conv1.weight (8, 3, 3, 3), bn1 (8), layer1.0.conv1.weight (16, 8, 3, 3),
 *   layer1.0.bn1 (16), fc.weight (10, 16), fc.bias (10).
 * layer1.0.conv1.weight is kept in conv_tag (dnnl_oihw for plain, or a
 * blocked tag such as dnnl_OIhw16i16o). The buffers are allocated; when
 * seed is not 0, values, momentum, running statistics (var > 0) and
 * num_batches_tracked are filled from it. Calls dnn_init(). */
void testutil_params_tiny(Params *p, dnnl_format_tag_t conv_tag, uint32_t seed);

#endif
