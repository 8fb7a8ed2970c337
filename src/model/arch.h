/*
 * arch.h - the architecture table of the model module (private to
 * src/model): each named network's family, block shape and depth, and the
 * channels of its stages. resnet.c builds a network from it; the public
 * arch_* functions of resnet.h read it.
 */
#ifndef RESNET_MODEL_ARCH_H
#define RESNET_MODEL_ARCH_H

typedef enum {
    FAMILY_RESNET,       /* torchvision resnet18-152 */
    FAMILY_CIFAR,        /* the ResNet paper's CIFAR networks, option-A shortcuts */
    FAMILY_RESNEXT,      /* torchvision resnext* */
    FAMILY_WIDE,         /* torchvision wide_resnet* */
    FAMILY_PREACT,       /* pre-activation, ImageNet stem and widths */
    FAMILY_PREACT_CIFAR, /* pre-activation, CIFAR stem and widths */
    FAMILY_WRN,          /* wrn-D-K */
} Family;

typedef struct {
    char name[32];
    Family family;
    int bottleneck;
    int groups;          /* of the bottleneck's 3x3 conv */
    int width_per_group; /* bottleneck width = planes * width_per_group / 64 * groups */
    int widen;           /* CIFAR pre-activation basic blocks: 16k, 32k, 64k channels */
    int blocks[4];
} ArchSpec;

/* The table's entry or a valid wrn-D-K; 0 when name is neither. */
int arch_find(const char *name, ArchSpec *out);
/* CIFAR stem and widths (16, 32, 64 channels in three stages). */
int family_cifar(Family f);
/* Pre-activation blocks (BN-ReLU before each convolution). */
int family_preact(Family f);
/* 3 stages (CIFAR networks) or 4. */
int arch_stages(const ArchSpec *s);
/* The channels of a block of stage (0-based): width inside, out at the end. */
void arch_stage_channels(const ArchSpec *s, int stage, int *width, int *out);

#endif
