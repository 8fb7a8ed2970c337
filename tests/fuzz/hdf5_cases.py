"""Dataset and checkpoint files (HDF5, written with h5py) that are valid or
broken in their structure: types, shapes, attributes, links and storage.

Each mutation is a function (rng, f, ctx) that edits an open h5py.File;
ctx says what the file is ("raw" or "jpeg" dataset, or "ckpt").
"""
import os

import h5py
import numpy as np

import images

HUGE_INTS = [-1, -5, 0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 4, 2 ** 40, 2 ** 62, -2 ** 63]


def odd_value(rng):
    """A value of a random kind for an attribute: wrong type, shape or range."""
    kind = rng.randrange(12)
    if kind == 0:
        return np.int64(rng.choice(HUGE_INTS))
    if kind == 1:
        return np.float64(rng.choice([float("nan"), float("inf"), -float("inf"), -0.0, 1e308, 3.5]))
    if kind == 2:
        return np.array([rng.randrange(-3, 5) for _ in range(rng.randrange(0, 4))], np.int32)
    if kind == 3:
        return "x" * rng.choice([0, 1, 7, 300, 5000])  # variable-length UTF-8 string
    if kind == 4:
        return np.bytes_(b"y" * rng.choice([1, 64, 4096]))  # fixed-length string
    if kind == 5:
        return np.array([b"raw", b"jpeg", b"x" * 100])  # fixed-length string array
    if kind == 6:
        return np.array(["raw", "jpeg"], dtype=h5py.string_dtype())  # vlen string array
    if kind == 7:
        return np.uint8(rng.randrange(256))
    if kind == 8:
        return np.float32(rng.choice([1.0, 0.5, float("nan")]))
    if kind == 9:
        return np.zeros((2, 2), np.float64)
    if kind == 10:
        return np.array([1 + 2j])  # complex: a compound type
    return np.bytes_(b"ra\xffw\x00junk")  # bytes that are not ASCII, an embedded NUL


def set_attr(f, obj, name, value):
    target = f[obj] if obj != "/" else f
    if name in target.attrs:
        del target.attrs[name]
    target.attrs[name] = value


# -- datasets -----------------------------------------------------------------

def write_dataset(path, rng, encoding="raw", n_train=12, n_val=6, size=8, classes=3, channels=3):
    """A valid dataset file, small enough for a quick verify or --dry-run."""
    with h5py.File(path, "w") as f:
        f.attrs["resnet_dataset_version"] = np.int32(1)
        f.attrs["num_classes"] = np.int32(classes)
        f.attrs["mean"] = np.full(channels, 0.5)
        f.attrs["std"] = np.full(channels, 0.25)
        f.attrs["encoding"] = np.bytes_(encoding.encode())
        for split, n in (("train", n_train), ("val", n_val)):
            labels = np.arange(n, dtype=np.int32) % classes
            if encoding == "raw":
                img = np.random.default_rng(rng.randrange(1 << 30)).integers(
                    0, 256, (n, size, size, channels), dtype=np.uint8)
                f.create_dataset(split + "/images", data=img, chunks=(1, size, size, channels))
            else:
                blobs = [images.jpeg(size + (i % 3), size, 3) for i in range(n)]
                offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
                f.create_dataset(split + "/jpeg", data=np.frombuffer(b"".join(blobs), np.uint8))
                f.create_dataset(split + "/offsets", data=offsets)
            f.create_dataset(split + "/labels", data=labels)
        f.create_dataset("classes", data=np.array([b"c%d" % i for i in range(classes)]))


def _replace(f, name, **kw):
    if name in f:
        del f[name]
    f.create_dataset(name, **kw)


def _split_obj(rng, ctx, names=("images", "labels")):
    if ctx == "jpeg":
        names = ("jpeg", "offsets", "labels")
    return "%s/%s" % (rng.choice(["train", "val"]), rng.choice(names))


def m_root_attr(rng, f, ctx):
    name = rng.choice(["resnet_dataset_version", "num_classes", "mean", "std", "encoding"])
    if rng.random() < 0.2:
        del f.attrs[name]
    else:
        set_attr(f, "/", name, odd_value(rng))
    return name, None  # whether a reader must refuse this depends on the value: unknown


def m_attr_numbers(rng, f, ctx):
    """Integer attributes of plausible types; returns whether every reader
    must refuse the value (version other than 1, num_classes <= 0 or beyond
    int32)."""
    name = rng.choice(["num_classes", "resnet_dataset_version"])
    value = rng.choice([-5, -1, 0, 1, 2, 3, 1000000, 2 ** 31, 2 ** 32 + 4, 2 ** 40])
    dtype = rng.choice([np.int32, np.int64] + ([np.uint64] if value >= 0 else []))
    if dtype == np.int32 and not -2 ** 31 <= value < 2 ** 31:
        dtype = np.int64
    set_attr(f, "/", name, dtype(value))
    if name == "resnet_dataset_version":
        return name, value != 1
    return name, value <= 0 or value >= 2 ** 31


def m_mean_std(rng, f, ctx):
    name = rng.choice(["mean", "std"])
    n = rng.choice([0, 1, 2, 3, 4, 1000])
    vals = rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e-300, 0.5])
    set_attr(f, "/", name, np.full(n, vals, rng.choice([np.float64, np.float32, np.int32])))


def m_encoding(rng, f, ctx):
    v = rng.choice(["raw", "jpeg", "RAW", "", "jpegx", "raw\x00jpeg", "é"])
    form = rng.randrange(4)
    if form == 0:
        set_attr(f, "/", "encoding", v)
    elif form == 1:
        set_attr(f, "/", "encoding", np.bytes_(v.encode()))
    elif form == 2:
        set_attr(f, "/", "encoding", np.array([v.encode()] * rng.choice([1, 2])))
    else:
        set_attr(f, "/", "encoding", np.array([v] * rng.choice([1, 3]), dtype=h5py.string_dtype()))


def m_dtype(rng, f, ctx):
    name = _split_obj(rng, ctx)
    data = f[name][()]
    dt = rng.choice([np.float32, np.float64, np.int16, np.uint16, np.int64, np.int8, np.uint32])
    _replace(f, name, data=data.astype(dt))
    return _touched(name)


def _touched(name):
    """The verdict on the labels is open again once they were rewritten."""
    return ("labels", None) if name.endswith("labels") else None


def m_shape(rng, f, ctx):
    name = _split_obj(rng, ctx)
    data = f[name][()]
    kind = rng.randrange(6)
    if kind == 0 and data.ndim > 1:
        data = data[..., 0]  # one rank less
    elif kind == 1:
        data = data[..., None]  # one rank more
    elif kind == 2:
        data = data[: rng.randrange(0, max(len(data), 1))]  # fewer records
    elif kind == 3:
        data = np.concatenate([data, data[:1]]) if data.ndim and len(data) else data
    elif kind == 4:
        data = data.reshape(-1)[:1].reshape(()) if data.size else np.zeros((), data.dtype)
    else:  # zero-size dimensions
        shape = list(data.shape) or [0]
        shape[rng.randrange(len(shape))] = 0
        data = np.zeros(shape, data.dtype)
    _replace(f, name, data=data)
    return _touched(name)


def m_huge_dims(rng, f, ctx):
    """Chunked datasets declaring sizes nothing could hold; no data written."""
    split = rng.choice(["train", "val"])
    which = rng.choice(["images", "labels", "jpeg", "offsets"])
    if which == "images":
        shape = rng.choice([(1, 2 ** 30, 2 ** 30, 3), (2 ** 40, 8, 8, 3), (4, 8, 8, 2 ** 20),
                            (12, 65536, 65536, 3), (12, 8, 8, 3)])
        _replace(f, split + "/images", shape=shape, dtype=np.uint8, chunks=(1, 1, 1, 1) if shape[3] < 64 else (1, 1, 1, 64))
    elif which == "labels":
        n = rng.choice([2 ** 40, 2 ** 31, 2 ** 32 + 4])
        _replace(f, split + "/labels", shape=(n,), dtype=np.int32, chunks=(4096,))
        return "labels", None
    elif which == "jpeg":
        _replace(f, split + "/jpeg", shape=(2 ** 40,), dtype=np.uint8, chunks=(1 << 20,))
    else:
        _replace(f, split + "/offsets", shape=(rng.choice([2 ** 40, 2 ** 31]),), dtype=np.int64, chunks=(4096,))


def m_zero_dims(rng, f, ctx):
    split = rng.choice(["train", "val"])
    shape = rng.choice([(12, 0, 8, 3), (12, 8, 0, 3), (12, 8, 8, 0), (0, 8, 8, 3)])
    _replace(f, split + "/images", data=np.zeros(shape, np.uint8))
    if shape[0] == 0:
        _replace(f, split + "/labels", data=np.zeros(0, np.int32))
        return "labels", None


def m_labels(rng, f, ctx):
    """A label outside [0, 3): verify must refuse it (if num_classes is untouched)."""
    name = rng.choice(["train", "val"]) + "/labels"
    lab = f[name][()].astype(np.int64)
    lab[rng.randrange(len(lab))] = rng.choice([-1, 3, 2 ** 31 - 1, -2 ** 31, 1000])
    _replace(f, name, data=lab.astype(np.int32))
    return "labels", True


def m_offsets(rng, f, ctx):
    if ctx != "jpeg":
        return m_labels(rng, f, ctx)
    name = rng.choice(["train", "val"]) + "/offsets"
    off = f[name][()]
    i = rng.randrange(len(off))
    off[i] = rng.choice([-1, 0, off[-1] + 1, 2 ** 62, -2 ** 63, off[max(i - 1, 0)], 1])
    _replace(f, name, data=off)


def m_jpeg_bytes(rng, f, ctx):
    """One image of the jpeg blob replaced by a damaged or huge one."""
    if ctx != "jpeg":
        return m_shape(rng, f, ctx)
    split = rng.choice(["train", "val"])
    off = f[split + "/offsets"][()]
    blob = f[split + "/jpeg"][()].tobytes()
    i = rng.randrange(len(off) - 1)
    _, bad = images.mutated_jpeg(rng)
    parts = [blob[off[k]:off[k + 1]] for k in range(len(off) - 1)]
    parts[i] = bad
    off = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    _replace(f, split + "/jpeg", data=np.frombuffer(b"".join(parts) or b"\0", np.uint8))
    _replace(f, split + "/offsets", data=off)


def m_classes(rng, f, ctx):
    kind = rng.randrange(7)
    n = rng.choice([0, 1, 3, 4, 100])
    if kind == 0:
        data = np.array([b"c" * rng.choice([1, 255, 256, 5000]) for _ in range(n)] or [b""])
    elif kind == 1:
        data = np.array(["é" * rng.choice([1, 300, 5000]) for _ in range(n)], dtype=h5py.string_dtype())
    elif kind == 2:
        data = np.arange(n, dtype=np.int32)
    elif kind == 3:
        data = np.array([[b"a", b"b"]] * max(n, 1))
    elif kind == 4:  # fixed-length strings without a terminating NUL
        data = np.array([b"abcdefgh"] * n, dtype="S8") if n else np.array([b"x"])
    elif kind == 5:
        data = np.array([b"a\x00b", b"\xff\xfe", b"%s%n%x"] * 2)
    else:
        data = np.array([""] * max(n, 1), dtype=h5py.string_dtype())
    _replace(f, "classes", data=data)


def m_links(rng, f, ctx):
    """External links, external storage, virtual datasets, soft links, groups
    where datasets belong (and the other way round)."""
    name = _split_obj(rng, ctx)
    kind = rng.randrange(7)
    if kind in (0, 1, 2):
        del f[name]
    if kind == 0:
        f[name] = h5py.ExternalLink(rng.choice(["/nonexistent.h5", "/etc/passwd", f.filename]),
                                    rng.choice(["/x", "/" + name]))
    elif kind == 1:
        f[name] = h5py.SoftLink(rng.choice(["/nowhere", "/" + name, "/train"]))
    elif kind == 2:
        data_len = 12
        target = rng.choice(["/nonexistent.h5", f.filename])
        layout = h5py.VirtualLayout(shape=(data_len,), dtype=np.int32)
        layout[:] = h5py.VirtualSource(target, "/train/labels", shape=(data_len,))
        f.create_virtual_dataset(name, layout, fillvalue=0)
    elif kind == 3:  # external raw storage in another file
        ext = os.path.join(os.path.dirname(f.filename), "external.bin")
        if rng.random() < 0.5:
            with open(ext, "wb") as e:
                e.write(os.urandom(rng.choice([0, 10, 5000])))
        shape = f[name].shape
        dt = f[name].dtype
        size = int(np.prod(shape)) * dt.itemsize
        del f[name]
        f.create_dataset(name, shape=shape, dtype=dt,
                         external=[(rng.choice([ext, "/dev/zero", "/nonexistent.bin"]), 0, max(size, 1))])
    elif kind == 4:
        del f[name]
        f.create_group(name)
    elif kind == 5:
        split = name.split("/")[0]
        del f[split]
        f.create_dataset(split, data=np.zeros(4, np.uint8))
    else:
        del f[name.split("/")[0]]
    return _touched(name)


def m_chunks_filters(rng, f, ctx):
    name = _split_obj(rng, ctx)
    data = f[name][()]
    kw = {"data": data}
    if data.ndim:
        kw["chunks"] = tuple(1 for _ in data.shape)
        kw["compression"] = rng.choice(["gzip", "lzf", None])
        kw["shuffle"] = rng.random() < 0.5
        kw["fletcher32"] = rng.random() < 0.5
    _replace(f, name, **kw)


DATASET_MUTATIONS = [m_root_attr, m_attr_numbers, m_mean_std, m_encoding, m_dtype, m_shape,
                     m_huge_dims, m_zero_dims, m_labels, m_offsets, m_jpeg_bytes, m_classes,
                     m_links, m_chunks_filters]


def byte_damage(rng, path):
    data = open(path, "rb").read()
    data = images.truncate(rng, data) if rng.random() < 0.5 else images.bitflip(rng, data, rng.choice([1, 4, 64]))
    with open(path, "wb") as f:
        f.write(data)


def mutate_file(rng, path, ctx, mutations):
    """1-3 structural mutations, now and then followed by byte damage.
    Returns the names of what was done and the set of keys (attribute
    names, "labels") whose final value every reader must refuse. A
    mutation may return (key, True/False/None); None means it touched the
    key with a value of unknown validity, and the last word on a key wins."""
    done, verdict = [], {}
    with h5py.File(path, "r+") as f:
        for _ in range(rng.choice([1, 1, 2, 3])):
            m = rng.choice(mutations)
            try:
                said = m(rng, f, ctx)
                done.append(m.__name__[2:])
                if said:
                    verdict[said[0]] = said[1]
            except Exception as e:  # h5py refused to write this one: the case goes on without it
                done.append("%s(skipped: %s)" % (m.__name__[2:], type(e).__name__))
    if rng.random() < 0.08:
        byte_damage(rng, path)
        done.append("bytes")
        verdict = {}  # a flipped bit may be harmless
    if "num_classes" in verdict and verdict.get("labels"):
        del verdict["labels"]  # a label's validity depends on num_classes
    return done, {k for k, v in verdict.items() if v}


# -- checkpoints --------------------------------------------------------------

CKPT_ATTRS = ["format_version", "arch", "num_classes", "epoch", "epoch_step", "step", "lr",
              "global_batch", "seed", "world_size", "best_metric", "dataset_fingerprint",
              "version", "command_line"]
SCHED_ATTRS = ["type", "mode", "factor", "threshold", "min_lr", "eps", "threshold_mode",
               "patience", "cooldown", "best", "num_bad_epochs", "cooldown_counter", "last_epoch"]


def _tensor(rng, f):
    names = []
    f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
    return rng.choice(names) if names else None


def c_root_attr(rng, f, ctx):
    name = rng.choice(CKPT_ATTRS)
    if rng.random() < 0.15:
        if name in f.attrs:
            del f.attrs[name]
        return name, True  # a resume needs every root attribute (docs/checkpoint-format.md)
    set_attr(f, "/", name, odd_value(rng))
    return name, None


def c_counters(rng, f, ctx):
    """Integer attributes; a resume must refuse negative counters, another
    num_classes than the model's 3 and a format_version other than 1."""
    name = rng.choice(["step", "epoch", "epoch_step", "num_classes", "global_batch", "world_size",
                       "format_version", "seed"])
    value = rng.choice(HUGE_INTS)
    set_attr(f, "/", name, np.int64(value))
    if name in ("step", "epoch", "epoch_step"):
        return name, value < 0
    if name == "num_classes":
        return name, value != 3
    if name == "format_version":
        return name, value != 1
    return name, None


def c_floats(rng, f, ctx):
    """lr NaN, Inf or negative must be refused; best_metric NaN is normal."""
    name = rng.choice(["lr", "best_metric"])
    value = rng.choice([float("nan"), float("inf"), -1.0, 0.0, 1e308])
    set_attr(f, "/", name, np.float64(value))
    return name, name == "lr" and not (0 <= value < float("inf"))


def c_arch(rng, f, ctx):
    v = rng.choice(["resnet50", "resnet18", "nope", "", "wrn-28-10", "wrn-4-1000000", "resnet20" * 100,
                    "wrn-0-0", "wrn--2-3", "preact-resnet1001"])
    set_attr(f, "/", "arch", v if rng.random() < 0.5 else np.bytes_(v.encode()))


def c_scheduler(rng, f, ctx):
    if "scheduler" not in f:
        f.create_group("scheduler")
    name = rng.choice(SCHED_ATTRS)
    val = odd_value(rng)
    if name in ("mode", "threshold_mode", "type") and rng.random() < 0.5:
        val = rng.choice(["min", "max", "rel", "abs", "bogus", ""])
    set_attr(f, "scheduler", name, val)


def c_tensor_values(rng, f, ctx):
    name = _tensor(rng, f)
    if not name:
        return
    d = f[name][()]
    if d.dtype.kind == "f":
        d = np.array(d)
        flat = d.reshape(-1)
        if flat.size:
            flat[rng.randrange(flat.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e38])
            if rng.random() < 0.3:
                flat[:] = np.nan
        _replace(f, name, data=d)
    else:
        _replace(f, name, data=np.array(rng.choice(HUGE_INTS), d.dtype if d.dtype.kind in "iu" else np.int64))


def c_tensor_shape(rng, f, ctx):
    name = _tensor(rng, f)
    if not name:
        return
    d = f[name][()]
    kind = rng.randrange(5)
    if kind == 0:
        d = d.reshape(-1)
    elif kind == 1:
        d = np.zeros((0,) + d.shape[1:], d.dtype)
    elif kind == 2:
        d = d.astype(rng.choice([np.float64, np.float16, np.int32, np.uint8]))
    elif kind == 3:
        d = np.zeros((), d.dtype)
    else:
        _replace(f, name, shape=(2 ** 40,) + d.shape[1:], dtype=d.dtype, chunks=(1,) + d.shape[1:])
        return
    _replace(f, name, data=d)


def c_structure(rng, f, ctx):
    name = _tensor(rng, f)
    kind = rng.randrange(5)
    if kind == 0 and name:
        del f[name]
    elif kind == 1 and name:
        del f[name]
        f[name] = h5py.SoftLink("/missing/" + name)
    elif kind == 2 and name:
        del f[name]
        f[name] = h5py.ExternalLink("/nonexistent.h5", "/" + name)
    elif kind == 3:
        g = rng.choice(["model", "optimizer", "scheduler", "optimizer/momentum"])
        if g in f:
            del f[g]
        if rng.random() < 0.5:
            f.create_dataset(g, data=np.zeros(3, np.float32))
    elif name:
        f.create_dataset(name.rsplit("/", 1)[0] + "/extra.tensor" + str(rng.randrange(9)),
                         data=np.zeros(rng.choice([1, 100]), np.float32))


CKPT_MUTATIONS = [c_root_attr, c_counters, c_floats, c_arch, c_scheduler, c_tensor_values,
                  c_tensor_shape, c_structure]
