#!/usr/bin/env python3
"""ckpt_to_torch.py CKPT.h5 OUT.pt [--arch A] [--num-classes K] [--stem S] [--force]

Exports the weights and BatchNorm statistics of a resnet-dist checkpoint (its
/model group) as a PyTorch state_dict saved with torch.save, which loads with
load_state_dict(strict=True) into resnet_torch.build(arch, num_classes, stem)
(torchvision's own model for torchvision's architectures). The architecture,
the number of classes and the stem come from the checkpoint's root attributes
`arch`, `num_classes` and `stem`; a file without them (a torchvision model
exported with h5py) needs --arch, the classes default to fc.weight's rows and
the stem to the one conv1.weight's kernel implies (3x3: small, 7x7: imagenet),
the input channels to conv1.weight's. The optimizer state is not exported.

OUT is written to a temporary file and renamed when complete; an existing OUT
is kept unless --force. Bad input (a missing or damaged file, a tensor of the
wrong shape, ...) prints one "error: FILE: ..." line and exits 2; nothing is
written. Needs python3-torch, python3-h5py and python3-numpy (torchvision for
torchvision's architectures).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_io  # noqa: E402
from torch_io import InputError, die  # noqa: E402


def attr_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "shape") and value.shape == () and hasattr(value, "item"):
        return attr_text(value.item())
    return str(value)


def read_model(path):
    """(root attributes, key -> numpy array of /model) of an HDF5 file."""
    import h5py

    if not os.path.exists(path):
        raise InputError("%s: no such file" % path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError("%s: cannot open as HDF5 (truncated or damaged file?)" % path)
    with f:
        if not isinstance(f.get("model"), h5py.Group):
            raise InputError("%s: /model is missing (not a resnet-dist checkpoint?)" % path)
        attrs = {k: f.attrs[k] for k in f.attrs}
        tensors = {}
        try:
            for key, ds in f["model"].items():
                if isinstance(ds, h5py.Dataset):
                    tensors[key] = ds[()]
        except OSError:
            raise InputError("%s: reading /model/%s failed (damaged file?)" % (path, key))
    return attrs, tensors


def model_spec(path, attrs, tensors, args):
    """(arch, num_classes, stem, in_channels): the flags, else the root
    attributes, else what conv1.weight and fc.weight imply."""
    import resnet_torch

    arch = args.arch or (attr_text(attrs["arch"]) if "arch" in attrs else None)
    if arch is None:
        raise InputError("%s: root attribute arch is missing; give --arch" % path)
    if not resnet_torch.arch_exists(arch):
        raise InputError("%s: unknown architecture %s (known: %s)"
                         % (path, arch, ", ".join(resnet_torch.arch_names())))
    for key in ("conv1.weight", "fc.weight"):
        if key not in tensors or getattr(tensors[key], "ndim", 0) not in (2, 4):
            raise InputError("%s: /model/%s is missing (the model is %s)" % (path, key, arch))
    if args.num_classes:
        num_classes = args.num_classes
    elif "num_classes" in attrs:
        try:
            num_classes = int(attrs["num_classes"])
        except (TypeError, ValueError):
            raise InputError("%s: root attribute num_classes is %s, expected an integer"
                             % (path, attrs["num_classes"]))
    else:
        num_classes = int(tensors["fc.weight"].shape[0])
    if not 1 <= num_classes <= 1 << 20:
        raise InputError("%s: num_classes is %d, expected an integer from 1 to 1048576"
                         % (path, num_classes))
    stem = args.stem or (attr_text(attrs["stem"]) if "stem" in attrs else
                         resnet_torch.infer_stem(arch, tensors["conv1.weight"].shape))
    if stem not in resnet_torch.STEMS:
        raise InputError("%s: stem %s is neither imagenet nor small" % (path, stem))
    in_channels = int(tensors["conv1.weight"].shape[1])
    if in_channels not in (1, 3):
        raise InputError("%s: /model/conv1.weight has %d input channels, expected 1 or 3"
                         % (path, in_channels))
    return arch, num_classes, stem, in_channels


def export(args):
    if not args.force and os.path.lexists(args.out):
        raise InputError("%s exists; give --force to replace it" % args.out)
    attrs, tensors = read_model(args.ckpt)
    arch, num_classes, stem, in_channels = model_spec(args.ckpt, attrs, tensors, args)
    import resnet_torch
    import torch

    if arch in resnet_torch.TORCHVISION_ARCHS:
        torch_io.require_modules("ckpt_to_torch.py", ("torchvision",))
    model = resnet_torch.build(arch, num_classes, stem, in_channels)
    what = torch_io.describe(arch, num_classes, stem, in_channels)
    template = model.state_dict()
    state = torch_io.check_tensors(args.ckpt, {"/model/" + k: v for k, v in tensors.items()},
                                   {"/model/" + k: v for k, v in template.items()}, what)
    extra = sorted(set(tensors) - set(template))
    if extra:
        torch_io.warn("%s: %d tensors the model lacks, not exported: %s (the model is %s)"
                      % (args.ckpt, len(extra), torch_io.key_list(extra), what))
    model.load_state_dict({k[len("/model/"):]: torch.from_numpy(v) for k, v in state.items()},
                          strict=True)
    torch_io.write_whole(args.out, args.force, lambda tmp: torch.save(model.state_dict(), tmp))
    print("ckpt_to_torch: wrote %s: %d tensors of %s; load it into "
          "resnet_torch.build(%r, %d, %r%s)" % (args.out, len(state), what, arch, num_classes,
                                                stem, "" if in_channels == 3 else ", 1"))


def main():
    ap = argparse.ArgumentParser(
        prog="ckpt_to_torch.py",
        description="Export a resnet-dist checkpoint's weights as a PyTorch state_dict.")
    ap.add_argument("ckpt", metavar="CKPT.h5", help="resnet-dist checkpoint (or any file with "
                    "torchvision's state_dict under /model)")
    ap.add_argument("out", metavar="OUT.pt", help="where torch.save writes the state_dict")
    ap.add_argument("--arch", help="architecture [the checkpoint's arch attribute]")
    ap.add_argument("--num-classes", type=int, help="classifier outputs [the checkpoint's]")
    ap.add_argument("--stem", choices=("imagenet", "small"),
                    help="[the checkpoint's stem attribute, else conv1.weight's kernel]")
    ap.add_argument("--force", action="store_true", help="replace an existing OUT.pt")
    args = ap.parse_args()
    torch_io.require_modules("ckpt_to_torch.py", ("numpy", "h5py", "torch"))
    try:
        export(args)
    except InputError as e:
        die(str(e))


if __name__ == "__main__":
    main()
