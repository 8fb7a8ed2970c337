"""PyTorch definitions of every network resnet_dist trains (docs/models.md).

build(arch, num_classes, stem) returns an nn.Module whose state_dict has
exactly the keys, shapes and dtypes of a resnet-dist checkpoint's /model group
and whose forward computes what resnet_dist computes:

  resnet18/34/50/101/152, resnext50_32x4d, resnext101_32x8d, resnext101_64x4d,
  wide_resnet50_2, wide_resnet101_2
      torchvision's own model; with stem "small" its conv1 becomes a 3x3
      stride-1 convolution and its max-pool an identity, and a grey (1
      channel) input gets a conv1 with one input channel.
  resnet20/32/44/56/110/1202
      the ResNet paper's CIFAR networks, option-A shortcuts: subsample by 2
      and zero-pad the new channels, half before and half after.
  preact-resnet18/34/50/101/152, preact-resnet110/164/1001, wrn-D-K
      pre-activation networks: BN-ReLU before each convolution, identity
      path untouched, projections of the pre-activated input, bn_final.

Training-only parts: wrn-D-K's dropout is an nn.Dropout between a block's
convolutions (dropout=P); stochastic depth (--drop-path) is not modelled, it
changes nothing in evaluation. Initialisation is torchvision's (Kaiming
normal fan-out, BN 1 and 0, nn.Linear's default); zero_init_residual as
--zero-init-residual.

Only the standard library is imported at module level besides torch, so the
tools can print a clear message when torch is missing.
"""
import re

import torch
from torch import nn
import torch.nn.functional as F

TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                     "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
                     "wide_resnet50_2", "wide_resnet101_2")
# blocks per stage of the CIFAR ResNets (three stages of n basic blocks)
CIFAR_ARCHS = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18,
               "resnet1202": 200}
# bottleneck, blocks per stage
PREACT_ARCHS = {"preact-resnet18": (False, (2, 2, 2, 2)),
                "preact-resnet34": (False, (3, 4, 6, 3)),
                "preact-resnet50": (True, (3, 4, 6, 3)),
                "preact-resnet101": (True, (3, 4, 23, 3)),
                "preact-resnet152": (True, (3, 8, 36, 3))}
PREACT_CIFAR_ARCHS = {"preact-resnet110": (False, 18), "preact-resnet164": (True, 18),
                      "preact-resnet1001": (True, 111)}
STEMS = ("imagenet", "small")


def wrn_depth_width(arch):
    """(D, K) of a valid wrn-D-K name (D = 6n + 4, 10 <= D <= 6004, 1 <= K <= 64), else None."""
    m = re.fullmatch(r"wrn-([1-9][0-9]*)-([1-9][0-9]*)", arch)
    if not m:
        return None
    d, k = int(m.group(1)), int(m.group(2))
    if d < 10 or d > 6004 or (d - 4) % 6 or k > 64:
        return None
    return d, k


def arch_names():
    return (list(TORCHVISION_ARCHS) + list(CIFAR_ARCHS) + list(PREACT_ARCHS)
            + list(PREACT_CIFAR_ARCHS) + ["wrn-D-K"])


def arch_exists(arch):
    return (arch in TORCHVISION_ARCHS or arch in CIFAR_ARCHS or arch in PREACT_ARCHS
            or arch in PREACT_CIFAR_ARCHS or wrn_depth_width(arch) is not None)


def always_small_stem(arch):
    """The CIFAR families (CIFAR ResNets, pre-activation CIFAR, wrn) have one stem only."""
    return arch in CIFAR_ARCHS or arch in PREACT_CIFAR_ARCHS or wrn_depth_width(arch) is not None


def conv3x3(cin, cout, stride=1, groups=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride, 0, bias=False)


def stem_conv(cin, cout, small):
    return conv3x3(cin, cout) if small else nn.Conv2d(cin, cout, 7, 2, 3, bias=False)


def init_torchvision(model):
    """torchvision's ResNet initialisation (fc keeps nn.Linear's default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class CifarBasicBlock(nn.Module):
    """Post-activation basic block; where the shape changes, the option-A
    shortcut: every stride-th pixel, new channels zero (half before, half after)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.pad_before = (cout - cin) // 2
        self.pad_after = cout - cin - self.pad_before
        self.option_a = stride != 1 or cin != cout

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x
        if self.option_a:
            s = x[:, :, ::self.stride, ::self.stride]
            s = F.pad(s, (0, 0, 0, 0, self.pad_before, self.pad_after))
        return F.relu(y + s)


class CifarResNet(nn.Module):
    """He et al. 2015, section 4.2: 3x3 conv (16), three stages of n blocks
    with 16-32-64 channels, global average pool, fc."""

    def __init__(self, n, num_classes, in_channels):
        super().__init__()
        self.conv1 = conv3x3(in_channels, 16)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for stage in range(3):
            cout = 16 << stage
            blocks = []
            for j in range(n):
                blocks.append(CifarBasicBlock(cin, cout, 2 if j == 0 and stage > 0 else 1))
                cin = cout
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)
        init_torchvision(self)

    def residual_blocks(self):
        return [b for s in (self.layer1, self.layer2, self.layer3) for b in s]

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice (basic) or three times (bottleneck, stride on the
    3x3); the identity path is untouched, a projection (downsample.0, no BN)
    takes the pre-activated input relu(bn1(x)); no ReLU after the add."""

    def __init__(self, cin, width, cout, stride, bottleneck, dropout=0.0):
        super().__init__()
        self.bottleneck = bottleneck
        self.bn1 = nn.BatchNorm2d(cin)
        if bottleneck:
            self.conv1 = conv1x1(cin, width)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv2 = conv3x3(width, width, stride)
            self.bn3 = nn.BatchNorm2d(width)
            self.conv3 = conv1x1(width, cout)
        else:
            self.conv1 = conv3x3(cin, cout, stride)
            self.bn2 = nn.BatchNorm2d(cout)
            self.conv2 = conv3x3(cout, cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 and not bottleneck else None
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(conv1x1(cin, cout, stride))

    def last_conv(self):
        return self.conv3 if self.bottleneck else self.conv2

    def forward(self, x):
        a = F.relu(self.bn1(x))
        y = F.relu(self.bn2(self.conv1(a)))
        if self.dropout is not None:
            y = self.dropout(y)
        y = self.conv2(y)
        if self.bottleneck:
            y = self.conv3(F.relu(self.bn3(y)))
        return y + (self.downsample(a) if self.downsample is not None else x)


class PreActResNet(nn.Module):
    """He et al. 2016. ImageNet networks keep torchvision's stem (conv1, bn1,
    ReLU, max-pool; or the small stem); the CIFAR ones and wrn-D-K start with
    one 3x3 convolution (16 channels), no BN. bn_final + ReLU before the pool."""

    def __init__(self, bottleneck, blocks, num_classes, in_channels, cifar, small_stem,
                 widen=1, dropout=0.0):
        super().__init__()
        small = cifar or small_stem
        self.conv1 = stem_conv(in_channels, 16 if cifar else 64, small)
        self.bn1 = None if cifar else nn.BatchNorm2d(64)
        self.maxpool = None if small else nn.MaxPool2d(3, 2, 1)
        cin = 16 if cifar else 64
        for stage, n in enumerate(blocks):
            planes = (16 if cifar else 64) << stage
            width, cout = (planes, planes * 4) if bottleneck else (planes * widen,) * 2
            layer = []
            for j in range(n):
                layer.append(PreActBlock(cin, width, cout, 2 if j == 0 and stage > 0 else 1,
                                         bottleneck, dropout))
                cin = cout
            setattr(self, "layer%d" % (stage + 1), nn.Sequential(*layer))
        self.num_stages = len(blocks)
        self.bn_final = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)
        init_torchvision(self)

    def residual_blocks(self):
        return [b for s in range(self.num_stages) for b in getattr(self, "layer%d" % (s + 1))]

    def forward(self, x):
        x = self.conv1(x)
        if self.bn1 is not None:
            x = F.relu(self.bn1(x))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for s in range(self.num_stages):
            x = getattr(self, "layer%d" % (s + 1))(x)
        x = F.relu(self.bn_final(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def torchvision_model(arch, num_classes, in_channels, small_stem, zero_init_residual):
    import torchvision  # slow to import; only these networks need it

    model = getattr(torchvision.models, arch)(num_classes=num_classes,
                                              zero_init_residual=zero_init_residual)
    if small_stem or in_channels != 3:
        model.conv1 = stem_conv(in_channels, 64, small_stem)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    if small_stem:
        model.maxpool = nn.Identity()
    return model


def build(arch, num_classes, stem="imagenet", in_channels=3, zero_init_residual=False,
          dropout=0.0):
    """The network `arch` with num_classes outputs. stem: "imagenet" or
    "small" (ignored by the CIFAR families, which always use the small one);
    in_channels: 1 (grey) or 3; dropout: wrn-D-K only, as --wrn-dropout."""
    if not arch_exists(arch):
        raise ValueError("unknown architecture %s (known: %s)" % (arch, ", ".join(arch_names())))
    if stem not in STEMS:
        raise ValueError("unknown stem %s (imagenet or small)" % stem)
    if in_channels not in (1, 3):
        raise ValueError("in_channels must be 1 or 3, not %s" % in_channels)
    if num_classes < 1:
        raise ValueError("num_classes must be at least 1, not %s" % num_classes)
    wrn = wrn_depth_width(arch)
    if dropout and wrn is None:
        raise ValueError("dropout: only wrn-D-K networks have dropout")
    small = stem == "small"
    if arch in TORCHVISION_ARCHS:
        return torchvision_model(arch, num_classes, in_channels, small, zero_init_residual)
    if arch in CIFAR_ARCHS:
        model = CifarResNet(CIFAR_ARCHS[arch], num_classes, in_channels)
    elif arch in PREACT_ARCHS:
        bottleneck, blocks = PREACT_ARCHS[arch]
        model = PreActResNet(bottleneck, blocks, num_classes, in_channels, False, small)
    elif arch in PREACT_CIFAR_ARCHS:
        bottleneck, n = PREACT_CIFAR_ARCHS[arch]
        model = PreActResNet(bottleneck, (n, n, n), num_classes, in_channels, True, True)
    else:
        n = (wrn[0] - 4) // 6
        model = PreActResNet(False, (n, n, n), num_classes, in_channels, True, True,
                             widen=wrn[1], dropout=dropout)
    if zero_init_residual:
        # Goyal et al.; pre-activation blocks zero their last conv (a zero
        # gamma ahead of a ReLU would get no gradient), as resnet_dist does
        with torch.no_grad():
            for b in model.residual_blocks():
                if isinstance(b, PreActBlock):
                    b.last_conv().weight.zero_()
                else:
                    b.bn2.weight.zero_()
    return model


def infer_stem(arch, conv1_weight_shape):
    """The stem a conv1.weight of this shape (OIHW) belongs to: a 3x3 kernel
    is the small stem, 7x7 the ImageNet one (the CIFAR families: small)."""
    if always_small_stem(arch):
        return "small"
    return "small" if tuple(conv1_weight_shape)[2:] == (3, 3) else "imagenet"
