#!/usr/bin/env python3
"""PyTorch side of `make bench`: times training steps of one model in this
(fresh) process and prints one JSON line shaped like `resnet_dist --bench`'s.

A step is what resnet_dist's step is: forward, cross-entropy, backward and
an SGD update (momentum 0.9, weight decay 1e-4) on one random batch that is
made once. torchvision's resnet18/34/50/101/152 with 1000 classes; the
ResNet paper's CIFAR networks (resnet20/32/44/56/110/1202) are written here,
option-A shortcuts, 10 classes.

    torch_bench.py --arch resnet50 --batch 32 --crop 224 --threads 2 \
        --layout channels_last --steps 6 --warmup 2
"""
import argparse
import json
import resource
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=None,
                   help="1000 for torchvision models, 10 for CIFAR ones")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--layout", choices=("nchw", "channels_last"), default="nchw")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--max-seconds", type=float, default=0.0,
                   help="stop timing after this many seconds, once 2 steps are done "
                        "[0: run all --steps]")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


CIFAR_DEPTHS = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18,
                "resnet1202": 200}


def cifar_resnet(nn, F, blocks_per_stage, num_classes):
    """The ResNet paper's CIFAR network (He et al. 2016, section 4.2):
    3x3 16-channel stem, three stages of BasicBlocks with 16/32/64 channels,
    option-A shortcuts (stride-2 subsampling, zero-padded channels), global
    average pool, fully connected classifier."""

    class ShortcutA(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.pad = (cout - cin) // 2

        def forward(self, x):
            x = x[:, :, ::2, ::2]
            return F.pad(x, (0, 0, 0, 0, self.pad, self.pad))

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = ShortcutA(cin, cout) if stride != 1 or cin != cout else None

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out = out + (x if self.shortcut is None else self.shortcut(x))
            return F.relu(out)

    class CifarResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            layers, cin = [], 16
            for stage, width in enumerate((16, 32, 64)):
                for b in range(blocks_per_stage):
                    stride = 2 if stage > 0 and b == 0 else 1
                    layers.append(BasicBlock(cin, width, stride))
                    cin = width
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(64, num_classes)
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layers(x)
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return self.fc(x)

    return CifarResNet()


def build_model(arch, num_classes):
    import torch.nn as nn
    import torch.nn.functional as F
    if arch in CIFAR_DEPTHS:
        return cifar_resnet(nn, F, CIFAR_DEPTHS[arch], num_classes or 10), num_classes or 10
    import torchvision.models as tvm
    if not hasattr(tvm, arch):
        raise SystemExit(f"torch_bench: unknown architecture {arch!r}")
    return getattr(tvm, arch)(num_classes=num_classes or 1000), num_classes or 1000


def main(argv):
    a = parse_args(argv)
    import torch
    import torch.nn.functional as F
    import torchvision

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model, classes = build_model(a.arch, a.num_classes)
    model.train()
    fmt = torch.channels_last if a.layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.randn(a.batch, 3, a.crop, a.crop).contiguous(memory_format=fmt)
    y = torch.randint(0, classes, (a.batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    times = []
    start = time.perf_counter()
    for i in range(a.steps):
        if a.max_seconds > 0 and i >= 2 and time.perf_counter() - start >= a.max_seconds:
            break
        s = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - s)
    elapsed = time.perf_counter() - start
    if not torch.isfinite(loss):
        print(f"torch_bench: non-finite loss {loss.item()}", file=sys.stderr)
    times.sort()
    # ru_maxrss is in KiB on Linux.
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "arch": a.arch, "batch": a.batch, "crop": a.crop, "ranks": 1,
        "threads": torch.get_num_threads(), "layout": a.layout,
        "steps": len(times),
        "img_per_s": round(len(times) * a.batch / elapsed, 2),
        "step_ms_median": round(1e3 * times[len(times) // 2], 2),
        "peak_rss_mb": round(rss_mb, 1),
        "torch": torch.__version__, "torchvision": torchvision.__version__,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
