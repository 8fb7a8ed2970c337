/*
 * testutil.h - helpers shared by the unit tests: float comparison that
 * names the worst element, scratch directories under build/tmp, the python
 * interpreter that has torch/h5py for fixture scripts, central differences
 * for gradient checks, small Params registries with torchvision names, and
 * the group set-up of oneDNN and MPI test programs. Linked into every test
 * binary; local.
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

/* sum a[i] b[i], added in index order so that a loss repeats exactly. */
double testutil_dot(const double *a, const double *b, size_t n);

/* (loss(ctx) at v[i] + h - loss(ctx) at v[i] - h) / 2h: the central
 * difference along coordinate i of an array v that loss reads through
 * ctx; v[i] is left as it was. */
double testutil_central_difference(double (*loss)(void *ctx), void *ctx, double *v, size_t i,
                                   double h);

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

struct CMUnitTest;

/* CMocka group set-up and tear-down for tests of oneDNN layers: the engine
 * and stream are made once for the group (dnn_init), not per test, and
 * released after it (dnn_free). */
int testutil_dnn_setup(void **state);
int testutil_dnn_teardown(void **state);

/* For programs run under mpirun, after MPI is initialised: runs the tests
 * as the CMocka group "<name> rank R of W" (so each rank's report says
 * whose it is) and returns 1 on every rank when any rank had a failure, 0
 * otherwise, so that the exit status does not depend on which rank mpirun
 * reports. A collective over MPI_COMM_WORLD. */
#define testutil_mpi_run_group(name, tests) \
    testutil_mpi_run_group_n((name), (tests), sizeof(tests) / sizeof((tests)[0]))
int testutil_mpi_run_group_n(const char *name, const struct CMUnitTest *tests, size_t count);
/* 1 on every rank when failed is not 0 on any rank, else 0; a collective
 * over MPI_COMM_WORLD. */
int testutil_mpi_any_failed(int failed);

#endif
