#!/usr/bin/env python3
"""torch_to_ckpt.py IN.pt OUT.h5 --arch A [--num-classes K] [--stem S] [--force]

Imports a PyTorch state_dict (a file torch.save wrote: a state_dict, a dict
holding one under "state_dict" or "model", or a whole module; DataParallel's
"module." prefixes are dropped) into an HDF5 file that `resnet_dist
--init-from OUT.h5` loads: /model/<key> for every tensor of the network, as
float32 (num_batches_tracked: an int64 scalar, 0 where the file has none),
and the root attributes format_version, arch, num_classes, stem and
command_line. It holds no optimizer state or schedule: it starts a run or
fine-tuning (--init-from), or is evaluated (--eval-only), but does not resume.

The state_dict must match resnet_torch.build(arch, num_classes, stem) exactly:
every key, every shape, no extra key; --num-classes defaults to fc.weight's
rows, --stem to the one conv1.weight's kernel implies (3x3: small, 7x7:
imagenet), the input channels (1 or 3) to conv1.weight's. Values must be
finite and running variances at least 0; float16/float64 tensors are stored
as float32.

OUT is written to a temporary file and renamed when complete; an existing
OUT is kept unless --force. Bad input prints one "error: FILE: ..." line and
exits 2; nothing is written. Needs python3-torch, python3-h5py and
python3-numpy (torchvision for torchvision's architectures).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_io  # noqa: E402
from torch_io import InputError, die  # noqa: E402


def load_state_dict(path):
    """key -> tensor of a torch.save file, unwrapped as the docstring says."""
    import torch

    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch before 1.13 has no weights_only
            obj = torch.load(path, map_location="cpu")
        except Exception:  # a pickled module: only with the full unpickler
            obj = torch.load(path, map_location="cpu")
    except Exception as e:
        raise InputError("%s: torch.load cannot read it (%s: %s); not a PyTorch file?"
                         % (path, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, torch.nn.Module):
                inner = inner.state_dict()
            if isinstance(inner, dict) and inner and all(torch.is_tensor(v)
                                                         for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        raise InputError("%s: holds %s, not a state_dict (a dict of tensor names to tensors)"
                         % (path, type(obj).__name__))
    for key, value in obj.items():
        if not isinstance(key, str) or not torch.is_tensor(value):
            raise InputError("%s: entry '%s' is %s, not a tensor; not a state_dict?"
                             % (path, key, type(value).__name__))
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def model_spec(path, state, args):
    import resnet_torch

    if not resnet_torch.arch_exists(args.arch):
        raise InputError("unknown architecture %s (known: %s)"
                         % (args.arch, ", ".join(resnet_torch.arch_names())))
    for key, ndim in (("conv1.weight", 4), ("fc.weight", 2)):
        if key not in state or state[key].dim() != ndim:
            raise InputError("%s: %s is missing (the model is %s)" % (path, key, args.arch))
    num_classes = args.num_classes or int(state["fc.weight"].shape[0])
    if not 1 <= num_classes <= 1 << 20:
        raise InputError("--num-classes %d: expected an integer from 1 to 1048576" % num_classes)
    stem = args.stem or resnet_torch.infer_stem(args.arch, state["conv1.weight"].shape)
    in_channels = int(state["conv1.weight"].shape[1])
    if in_channels not in (1, 3):
        raise InputError("%s: conv1.weight has %d input channels, expected 1 or 3"
                         % (path, in_channels))
    return args.arch, num_classes, stem, in_channels


def write_h5(tmp, tensors, arch, num_classes, stem):
    import h5py
    import numpy as np

    with h5py.File(tmp, "w") as f:
        f.attrs["format_version"] = np.int64(1)
        f.attrs["arch"] = arch
        f.attrs["num_classes"] = np.int64(num_classes)
        f.attrs["stem"] = stem
        f.attrs["command_line"] = " ".join(sys.argv)
        model = f.create_group("model")
        for key, value in tensors.items():
            model.create_dataset(key, data=value)  # contiguous, little-endian


def convert(args):
    if not args.force and os.path.lexists(args.out):
        raise InputError("%s exists; give --force to replace it" % args.out)
    if not os.path.exists(args.input):
        raise InputError("%s: no such file" % args.input)
    torch_io.require_modules("torch_to_ckpt.py", ("numpy", "h5py", "torch"))
    import resnet_torch

    if args.arch in resnet_torch.TORCHVISION_ARCHS:
        torch_io.require_modules("torch_to_ckpt.py", ("torchvision",))
    state = load_state_dict(args.input)
    arch, num_classes, stem, in_channels = model_spec(args.input, state, args)
    model = resnet_torch.build(arch, num_classes, stem, in_channels)
    what = torch_io.describe(arch, num_classes, stem, in_channels)
    template = model.state_dict()
    extra = sorted(set(state) - set(template))
    if extra:
        raise InputError("%s: %d tensors the model lacks: %s (the model is %s; another --arch?)"
                         % (args.input, len(extra), torch_io.key_list(extra), what))
    tensors = torch_io.check_tensors(args.input, {k: v.detach().cpu().numpy()
                                                  for k, v in state.items()}, template, what)
    torch_io.write_whole(args.out, args.force,
                         lambda tmp: write_h5(tmp, tensors, arch, num_classes, stem))
    print("torch_to_ckpt: wrote %s: %d tensors of %s; resnet_dist --arch %s%s --init-from %s "
          "loads it" % (args.out, len(tensors), what, arch,
                        " --stem small" if stem == "small" and
                        not resnet_torch.always_small_stem(arch) else "", args.out))


def main():
    ap = argparse.ArgumentParser(
        prog="torch_to_ckpt.py",
        description="Import a PyTorch state_dict as an HDF5 file resnet_dist --init-from loads.")
    ap.add_argument("input", metavar="IN.pt", help="a file torch.save wrote")
    ap.add_argument("out", metavar="OUT.h5", help="the HDF5 file to write")
    ap.add_argument("--arch", required=True, help="architecture, as resnet_dist --arch")
    ap.add_argument("--num-classes", type=int, help="classifier outputs [fc.weight's rows]")
    ap.add_argument("--stem", choices=("imagenet", "small"),
                    help="[the stem conv1.weight's kernel implies]")
    ap.add_argument("--force", action="store_true", help="replace an existing OUT.h5")
    args = ap.parse_args()
    try:
        convert(args)
    except InputError as e:
        die(str(e))


if __name__ == "__main__":
    main()
