"""What ckpt_to_torch.py and torch_to_ckpt.py share: messages and exit
codes as resnet_dist's (one "error: FILE: what" line, exit 2 for bad input),
the check of a state_dict against the network resnet_torch.build makes, and
writing an output file whole or not at all (a temporary file in the same
directory, flushed, then renamed; an existing file is kept unless --force).
"""
import errno
import os
import sys

EXIT_INTERNAL = 1
EXIT_USAGE = 2


class InputError(Exception):
    """Bad user input: printed as one "error:" line, exit 2."""


def die(msg, code=EXIT_USAGE):
    print("error: " + msg, file=sys.stderr)
    sys.exit(code)


def require_modules(tool, names):
    """Exits 1 naming the Debian packages to install when a Python package
    the tool needs is missing (found without importing it: torch takes a
    second or two to import, and the tools check their input first)."""
    import importlib.util

    debian = {"torch": "python3-torch", "torchvision": "python3-torchvision",
              "h5py": "python3-h5py", "numpy": "python3-numpy"}
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        die("%s needs the Python packages %s (Debian: apt-get install %s)"
            % (tool, ", ".join(missing), " ".join(debian[m] for m in missing)), EXIT_INTERNAL)


def shape_str(shape):
    shape = tuple(int(d) for d in shape)
    return "a single value" if not shape else "(" + ", ".join(str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def describe(arch, num_classes, stem, in_channels):
    return "%s with %d classes, %s stem, %d input channel%s" % (
        arch, num_classes, stem, in_channels, "" if in_channels == 1 else "s")


def check_tensors(path, tensors, template, what):
    """tensors: key -> numpy array from the user's file; template: the
    model's state_dict. Returns key -> numpy array in the template's order and
    dtypes (float tensors as float32, num_batches_tracked as an int64 scalar;
    a missing counter becomes 0). Raises InputError naming path and key for a
    missing key, another shape, a non-number, a NaN or infinity, or a
    negative running variance. what: e.g. "resnet20 with 10 classes, ..."."""
    import numpy as np

    out = {}
    for key, ref in template.items():
        want = tuple(ref.shape)
        if key not in tensors:
            if key.endswith(".num_batches_tracked"):
                out[key] = np.array(0, np.int64)
                continue
            raise InputError("%s: %s is missing (the model is %s)" % (path, key, what))
        value = np.asarray(tensors[key])
        if key.endswith(".num_batches_tracked"):
            if value.size != 1 or value.dtype.kind not in "iu":
                raise InputError("%s: %s is %s %s, expected an integer scalar"
                                 % (path, key, value.dtype, shape_str(value.shape)))
            count = int(value.reshape(()))
            if count < 0:
                raise InputError("%s: %s is %d, expected a count of at least 0"
                                 % (path, key, count))
            out[key] = np.array(count, np.int64)
            continue
        if tuple(value.shape) != want:
            raise InputError("%s: %s has shape %s, the model expects %s (the model is %s)"
                             % (path, key, shape_str(value.shape), shape_str(want), what))
        if value.dtype.kind != "f":
            raise InputError("%s: %s has type %s, expected floating point"
                             % (path, key, value.dtype))
        value = value.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(value))
        if bad.size:
            raise InputError("%s: %s holds %s at index %d; a model must hold finite values"
                             % (path, key, value.reshape(-1)[bad[0]], bad[0]))
        if key.endswith(".running_var") and (value < 0).any():
            i = int(np.flatnonzero(value < 0)[0])
            raise InputError("%s: %s holds the negative variance %g at index %d"
                             % (path, key, value[i], i))
        out[key] = value
    return out


def warn(msg):
    print("warning: " + msg, file=sys.stderr)


def key_list(keys):
    """At most four keys, then ", ...": for messages."""
    keys = sorted(keys)
    return ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")


def write_whole(out, force, write):
    """Calls write(tmp_path) for a temporary file beside out, fsyncs it and
    renames it to out. Without force an existing out is an InputError and is
    left untouched; on any failure the temporary file is removed."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(out))
    if not force and os.path.lexists(out):
        raise InputError("%s exists; give --force to replace it" % out)
    if not os.path.isdir(directory):
        raise InputError("%s: the directory %s does not exist" % (out, directory))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(out) + ".",
                                   suffix=".tmp")
    except OSError as e:
        raise InputError("%s: cannot create a file in %s (%s)" % (out, directory, e.strerror))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, out)
        else:
            try:  # fails, atomically, when out appeared meanwhile
                os.link(tmp, out)
            except OSError as e:
                if e.errno == errno.EEXIST:
                    raise InputError("%s exists; give --force to replace it" % out)
                if os.path.lexists(out):
                    raise
                os.rename(tmp, out)  # a file system without hard links
            else:
                os.unlink(tmp)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
