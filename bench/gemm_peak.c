/*
 * gemm_peak.c - the machine's measured single-precision GEMM peak: times
 * oneDNN's dnnl_sgemm (C = A B, row-major, no transposes) on a few square
 * sizes with the given OpenMP thread count and prints one JSON line with the
 * best GFLOP/s (2 M N K flops per multiply). make bench uses it as the
 * denominator of "% of GEMM peak".
 *
 *   gemm_peak [--threads N] [--seconds S]
 */
#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_fill(size_t n, unsigned seed)
{
    float *p = NULL;
    if (posix_memalign((void **)&p, 64, n * sizeof *p) != 0) {
        fprintf(stderr, "gemm_peak: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

/* Best GFLOP/s of repeated n x n x n multiplies within about `seconds`. */
static double time_size(int n, double seconds, int *reps_out)
{
    size_t nn = (size_t)n * (size_t)n;
    float *a = alloc_fill(nn, 1), *b = alloc_fill(nn, 2), *c = alloc_fill(nn, 3);
    double flops = 2.0 * n * (double)n * n, best = 1e30, start = now();
    int reps = 0;
    /* One untimed call: oneDNN's kernel generation and thread start-up. */
    if (dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n) != dnnl_success) {
        fprintf(stderr, "gemm_peak: dnnl_sgemm failed for n=%d\n", n);
        exit(1);
    }
    while (reps < 3 || (now() - start < seconds && reps < 1000)) {
        double t0 = now();
        dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now() - t0;
        if (dt < best)
            best = dt;
        reps++;
    }
    free(a);
    free(b);
    free(c);
    *reps_out = reps;
    return flops / best / 1e9;
}

int main(int argc, char **argv)
{
    int threads = omp_get_max_threads();
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: gemm_peak [--threads N] [--seconds S]\n");
            return 2;
        }
    }
    if (threads < 1)
        threads = 1;
    omp_set_num_threads(threads);

    static const int sizes[] = {1024, 2048, 3072};
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    double best = 0.0;
    int best_n = 0;
    char detail[256] = "";
    size_t used = 0;
    for (int i = 0; i < nsizes; i++) {
        int reps;
        double g = time_size(sizes[i], seconds, &reps);
        if (g > best) {
            best = g;
            best_n = sizes[i];
        }
        used += (size_t)snprintf(detail + used, sizeof detail - used, "%s\"%d\":%.1f",
                                 i ? "," : "", sizes[i], g);
        if (used >= sizeof detail)
            used = sizeof detail - 1;
    }
    const dnnl_version_t *v = dnnl_version();
    printf("{\"threads\":%d,\"gflops\":%.1f,\"best_n\":%d,\"by_size\":{%s},"
           "\"dnnl\":\"%d.%d.%d\",\"isa\":\"%s\"}\n",
           threads, best, best_n, detail, v->major, v->minor, v->patch,
           dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa()));
    return 0;
}
