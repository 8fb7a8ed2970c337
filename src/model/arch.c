/* arch.c - the architecture table: the networks by name, their stage
 * widths, and --list-archs. */
#include "arch.h"

#include <stdio.h>
#include <string.h>

#include "params.h"
#include "resnet.h"

static const ArchSpec ARCHS[] = {
    {.name = "resnet18", .family = FAMILY_RESNET, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {2, 2, 2, 2}},
    {.name = "resnet34", .family = FAMILY_RESNET, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 4, 6, 3}},
    {.name = "resnet50", .family = FAMILY_RESNET, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 4, 6, 3}},
    {.name = "resnet101", .family = FAMILY_RESNET, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 4, 23, 3}},
    {.name = "resnet152", .family = FAMILY_RESNET, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 8, 36, 3}},
    {.name = "resnet20", .family = FAMILY_CIFAR, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 3, 3, 0}},
    {.name = "resnet32", .family = FAMILY_CIFAR, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {5, 5, 5, 0}},
    {.name = "resnet44", .family = FAMILY_CIFAR, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {7, 7, 7, 0}},
    {.name = "resnet56", .family = FAMILY_CIFAR, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {9, 9, 9, 0}},
    {.name = "resnet110", .family = FAMILY_CIFAR, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {18, 18, 18, 0}},
    {.name = "resnet1202", .family = FAMILY_CIFAR, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {200, 200, 200, 0}},
    {.name = "resnext50_32x4d", .family = FAMILY_RESNEXT, .bottleneck = 1, .groups = 32,
     .width_per_group = 4, .widen = 1, .blocks = {3, 4, 6, 3}},
    {.name = "resnext101_32x8d", .family = FAMILY_RESNEXT, .bottleneck = 1, .groups = 32,
     .width_per_group = 8, .widen = 1, .blocks = {3, 4, 23, 3}},
    {.name = "resnext101_64x4d", .family = FAMILY_RESNEXT, .bottleneck = 1, .groups = 64,
     .width_per_group = 4, .widen = 1, .blocks = {3, 4, 23, 3}},
    {.name = "wide_resnet50_2", .family = FAMILY_WIDE, .bottleneck = 1, .groups = 1,
     .width_per_group = 128, .widen = 1, .blocks = {3, 4, 6, 3}},
    {.name = "wide_resnet101_2", .family = FAMILY_WIDE, .bottleneck = 1, .groups = 1,
     .width_per_group = 128, .widen = 1, .blocks = {3, 4, 23, 3}},
    {.name = "preact-resnet18", .family = FAMILY_PREACT, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {2, 2, 2, 2}},
    {.name = "preact-resnet34", .family = FAMILY_PREACT, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 4, 6, 3}},
    {.name = "preact-resnet50", .family = FAMILY_PREACT, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 4, 6, 3}},
    {.name = "preact-resnet101", .family = FAMILY_PREACT, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 4, 23, 3}},
    {.name = "preact-resnet152", .family = FAMILY_PREACT, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {3, 8, 36, 3}},
    {.name = "preact-resnet110", .family = FAMILY_PREACT_CIFAR, .bottleneck = 0, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {18, 18, 18, 0}},
    {.name = "preact-resnet164", .family = FAMILY_PREACT_CIFAR, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {18, 18, 18, 0}},
    {.name = "preact-resnet1001", .family = FAMILY_PREACT_CIFAR, .bottleneck = 1, .groups = 1,
     .width_per_group = 64, .widen = 1, .blocks = {111, 111, 111, 0}},
};
#define NARCHS (sizeof ARCHS / sizeof ARCHS[0])

/* The wrn-D-K instances --list-archs shows (the WRN paper's tables). */
static const char *const LISTED_WRN[] = {"wrn-16-4", "wrn-16-8", "wrn-22-8",
                                         "wrn-28-10", "wrn-40-2", "wrn-40-4"};

int family_cifar(Family f)
{
    return f == FAMILY_CIFAR || f == FAMILY_PREACT_CIFAR || f == FAMILY_WRN;
}

int family_preact(Family f)
{
    return f == FAMILY_PREACT || f == FAMILY_PREACT_CIFAR || f == FAMILY_WRN;
}

static const char *family_label(Family f)
{
    static const char *const labels[] = {"ResNet", "CIFAR ResNet", "ResNeXt", "Wide ResNet",
                                         "pre-act ResNet", "pre-act CIFAR", "WRN"};
    return labels[f];
}

/* wrn-D-K with D = 6n + 4 (n >= 1) and 1 <= K <= 64. */
static int wrn_parse(const char *name, ArchSpec *out)
{
    int d = 0, k = 0, used = 0;
    if (sscanf(name, "wrn-%d-%d%n", &d, &k, &used) != 2 || name[used] != '\0')
        return 0;
    if (d < 10 || d > 6004 || (d - 4) % 6 != 0 || k < 1 || k > 64)
        return 0;
    char canonical[32];
    snprintf(canonical, sizeof canonical, "wrn-%d-%d", d, k);
    if (strcmp(canonical, name) != 0) /* no leading zeros or signs */
        return 0;
    int n = (d - 4) / 6;
    *out = (ArchSpec){.family = FAMILY_WRN, .groups = 1, .width_per_group = 64, .widen = k,
                      .blocks = {n, n, n, 0}};
    snprintf(out->name, sizeof out->name, "%s", name);
    return 1;
}

int arch_find(const char *name, ArchSpec *out)
{
    for (size_t i = 0; i < NARCHS; i++)
        if (strcmp(ARCHS[i].name, name) == 0) {
            *out = ARCHS[i];
            return 1;
        }
    return wrn_parse(name, out);
}

int arch_exists(const char *arch)
{
    ArchSpec s;
    return arch_find(arch, &s);
}

int arch_is_wrn(const char *arch)
{
    ArchSpec s;
    return arch_find(arch, &s) && s.family == FAMILY_WRN;
}

int arch_has_fixed_stem(const char *arch)
{
    ArchSpec s;
    return arch_find(arch, &s) && family_cifar(s.family);
}

void arch_names(char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NARCHS && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", ARCHS[i].name);
    if (used < len)
        snprintf(out + used, len - used, ", wrn-D-K (D = 6n+4, e.g. wrn-28-10)");
}

int arch_stages(const ArchSpec *s)
{
    return family_cifar(s->family) ? 3 : 4;
}

void arch_stage_channels(const ArchSpec *s, int stage, int *width, int *out)
{
    if (family_cifar(s->family)) {
        int planes = 16 << stage;
        if (s->bottleneck) {
            *width = planes;
            *out = planes * 4;
        } else {
            *width = *out = planes * s->widen;
        }
        return;
    }
    int planes = 64 << stage;
    if (s->bottleneck) {
        /* torchvision: int(planes * (base_width / 64.)) * groups */
        *width = planes * s->width_per_group / 64 * s->groups;
        *out = planes * 4;
    } else {
        *width = *out = planes;
    }
}

/* ---- --list-archs ---- */

static void thousands(char *out, size_t len, size_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v), j = 0;
    for (int i = 0; i < n && (size_t)j + 2 < len; i++) {
        if (i && (n - i) % 3 == 0)
            out[j++] = ',';
        out[j++] = digits[i];
    }
    out[j] = '\0';
}

static void arch_list_one(FILE *out, const ArchSpec *s, int crop, int num_classes, int small)
{
    int cifar = family_cifar(s->family);
    NetConfig cfg = {.num_classes = num_classes ? num_classes : cifar ? 10 : 1000,
                     .in_channels = 3,
                     .image_size = crop ? crop : cifar ? 32 : 224,
                     .batch = 1,
                     .small_stem = small};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", s->name);
    Params p;
    params_init(&p);
    Net *net = net_create(&cfg, &p); /* shapes only: the buffers are never allocated */
    double macs = net_macs_per_image(net);
    char count[32];
    thousands(count, sizeof count, params_numel(&p));
    fprintf(out, "%-18s %-15s %5d %7d %13s %9.3f %9.3f\n", s->name, family_label(s->family),
            cfg.image_size, cfg.num_classes, count, macs / 1e9, 2 * macs / 1e9);
    fflush(out);
    net_free(net);
    params_free(&p);
}

void arch_list(FILE *out, int crop, int num_classes, int small_stem)
{
    fprintf(out, "# parameters, and the cost of one forward pass per image: multiply-accumulates "
                 "(GMACs, the number\n# torchvision's tables call GFLOPS) and floating-point "
                 "operations (GFLOPs = 2 x GMACs)\n");
    fprintf(out, "%-18s %-15s %5s %7s %13s %9s %9s\n", "arch", "family", "input", "classes",
            "parameters", "GMACs", "GFLOPs");
    for (size_t i = 0; i < NARCHS; i++)
        arch_list_one(out, &ARCHS[i], crop, num_classes, small_stem);
    for (size_t i = 0; i < sizeof LISTED_WRN / sizeof LISTED_WRN[0]; i++) {
        ArchSpec s;
        wrn_parse(LISTED_WRN[i], &s);
        arch_list_one(out, &s, crop, num_classes, small_stem);
    }
}
