/* test_resnet.c - the depth table: parameter counts and multiply-accumulates
 * of every torchvision model we build and the paper's CIFAR nets against
 * their tables, state_dict names, stems and input channels. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mpi.h>

#include "params.h"
#include "resnet.h"

typedef struct {
    const char *arch;
    int classes, size;
    size_t params;  /* exact: torchvision's sum of p.numel() */
    double gmacs;   /* torchvision's table, 2 decimals */
} ArchRow;

static Net *build(Params *p, const char *arch, int classes, int size, int channels, int small)
{
    NetConfig cfg = {.num_classes = classes, .in_channels = channels, .image_size = size,
                     .batch = 1, .small_stem = small};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    params_init(p);
    Net *net = net_create(&cfg, p);
    params_allocate(p);
    return net;
}

/* Declared only, not allocated: counting needs no memory, and the largest
 * rows would need gigabytes for parameters, gradients and momentum. */
static void test_counts(void **state)
{
    (void)state;
    /* torchvision's models with num_classes=1000; the paper's CIFAR nets with 10 classes. */
    static const ArchRow rows[] = {
        {.arch = "resnet18", .classes = 1000, .size = 224,
         .params = 11689512, .gmacs = 1.81},
        {.arch = "resnet34", .classes = 1000, .size = 224,
         .params = 21797672, .gmacs = 3.66},
        {.arch = "resnet50", .classes = 1000, .size = 224,
         .params = 25557032, .gmacs = 4.09},
        {.arch = "resnet101", .classes = 1000, .size = 224,
         .params = 44549160, .gmacs = 7.80},
        {.arch = "resnet152", .classes = 1000, .size = 224,
         .params = 60192808, .gmacs = 11.51},
        {.arch = "resnext50_32x4d", .classes = 1000, .size = 224,
         .params = 25028904, .gmacs = 4.23},
        {.arch = "resnext101_32x8d", .classes = 1000, .size = 224,
         .params = 88791336, .gmacs = 16.41},
        {.arch = "resnext101_64x4d", .classes = 1000, .size = 224,
         .params = 83455272, .gmacs = 15.46},
        {.arch = "wide_resnet50_2", .classes = 1000, .size = 224,
         .params = 68883240, .gmacs = 11.40},
        {.arch = "wide_resnet101_2", .classes = 1000, .size = 224,
         .params = 126886696, .gmacs = 22.75},
        {.arch = "resnet20", .classes = 10, .size = 32,
         .params = 269722, .gmacs = 0.04},
        {.arch = "resnet56", .classes = 10, .size = 32,
         .params = 853018, .gmacs = 0.13},
        {.arch = "resnet110", .classes = 10, .size = 32,
         .params = 1727962, .gmacs = 0.25},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        NetConfig cfg = {.num_classes = rows[i].classes, .in_channels = 3,
                         .image_size = rows[i].size, .batch = 1};
        snprintf(cfg.arch, sizeof cfg.arch, "%s", rows[i].arch);
        Params p;
        params_init(&p);
        Net *net = net_create(&cfg, &p);
        print_message("%-18s %11zu parameters %7.3f GMACs\n", rows[i].arch, params_numel(&p),
                      net_macs_per_image(net) / 1e9);
        assert_int_equal(params_numel(&p), rows[i].params);
        assert_true(fabs(net_macs_per_image(net) / 1e9 - rows[i].gmacs) < 0.006);
        net_free(net);
        params_free(&p);
    }
}

static void test_names(void **state)
{
    (void)state;
    Params p;
    Net *net = build(&p, "resnet50", 10, 64, 3, 0);
    const char *must[] = {"conv1.weight", "bn1.weight", "layer1.0.conv3.weight",
                          "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                          "layer4.2.bn3.weight", "fc.weight", "fc.bias"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        assert_true(params_find(&p, must[i]) >= 0);
    assert_true(params_find(&p, "layer1.1.downsample.0.weight") < 0);
    assert_true(params_bn_state_find(&p, "layer3.5.bn2") >= 0);
    /* 53 BN layers + 53 convs in torchvision's resnet50 */
    assert_int_equal(p.bn_count, 53);
    int convs = 0;
    for (int i = 0; i < p.count; i++)
        convs += p.info[i].kind == PARAM_CONV_WEIGHT;
    assert_int_equal(convs, 53);
    const ParamInfo *w = &p.info[params_find(&p, "layer2.0.conv2.weight")];
    assert_int_equal(w->ndims, 4);
    assert_int_equal(w->dims[0], 128);
    assert_int_equal(w->dims[1], 128);
    assert_int_equal(w->dims[2], 3);
    net_free(net);
    params_free(&p);
}

static void test_cifar_has_no_projection(void **state)
{
    (void)state;
    Params p;
    Net *net = build(&p, "resnet20", 10, 32, 3, 0);
    for (int i = 0; i < p.count; i++)
        assert_null(strstr(p.info[i].name, "downsample"));
    assert_int_equal(p.info[params_find(&p, "conv1.weight")].dims[2], 3);
    net_free(net);
    params_free(&p);
}

static void test_small_stem_grey(void **state)
{
    (void)state;
    Params p;
    Net *net = build(&p, "resnet18", 10, 28, 1, 1);
    const ParamInfo *c = &p.info[params_find(&p, "conv1.weight")];
    assert_int_equal(c->dims[0], 64);
    assert_int_equal(c->dims[1], 1);
    assert_int_equal(c->dims[2], 3);
    /* No max-pool: stage 1 runs at the full 28 px. */
    double macs = net_macs_per_image(net);
    Params q;
    Net *big = build(&q, "resnet18", 10, 28, 1, 0);
    assert_true(macs > 10 * net_macs_per_image(big));
    net_free(big);
    params_free(&q);
    net_free(net);
    params_free(&p);
}

static void test_zero_init_residual(void **state)
{
    (void)state;
    NetConfig cfg = {.arch = "resnet50", .num_classes = 10, .in_channels = 3, .image_size = 32,
                     .batch = 1, .zero_init_residual = 1};
    Params p;
    params_init(&p);
    Net *net = net_create(&cfg, &p);
    params_allocate(&p);
    net_init_weights(net, 7);
    float g[2048];
    params_get_plain(&p, params_find(&p, "layer2.1.bn3.weight"), BUF_VALUE, g);
    for (int i = 0; i < 512; i++)
        assert_true(g[i] == 0.0f);
    params_get_plain(&p, params_find(&p, "layer2.1.bn2.weight"), BUF_VALUE, g);
    assert_true(g[0] == 1.0f);
    /* He init: conv weights have std sqrt(2 / (OC K K)) */
    const ParamInfo *w = &p.info[params_find(&p, "layer3.0.conv2.weight")];
    float *v = malloc(w->numel * sizeof *v);
    params_get_plain(&p, params_find(&p, "layer3.0.conv2.weight"), BUF_VALUE, v);
    double ss = 0;
    for (size_t i = 0; i < w->numel; i++)
        ss += (double)v[i] * v[i];
    double expect = 2.0 / (256 * 9);
    assert_true(fabs(ss / w->numel - expect) < 0.05 * expect);
    free(v);
    net_free(net);
    params_free(&p);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    dnn_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_cifar_has_no_projection),
        cmocka_unit_test(test_small_stem_grey),
        cmocka_unit_test(test_zero_init_residual),
    };
    int failed = cmocka_run_group_tests_name("resnet", tests, NULL, NULL);
    dnn_free();
    MPI_Finalize();
    return failed;
}
