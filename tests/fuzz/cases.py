"""The fuzz cases: each generator writes its inputs into a case folder and
returns the command to run and the exit codes that count as a clean end.

A generator is called as gen(rng, case_dir, env) where env.bin is the folder
of the binaries under test and env.base holds a valid small dataset and a
checkpoint written by the trainer itself (made once per run).
"""
import gzip
import json
import os
import shutil
import struct

import numpy as np

import hdf5_cases as H
import images

OK = {0, 2}  # done, or refused as bad input (docs: exit codes)


class Case:
    def __init__(self, argv, what, allowed=OK, sentinel=None):
        self.argv, self.what, self.allowed, self.sentinel = argv, what, allowed, sentinel


def _p(d, *names):
    return os.path.join(d, *names)


def _dist(env, *flags):
    return [_p(env.bin, "resnet_dist"), "--arch", "resnet20", "--stem", "small", "--batch-size", "4",
            "--threads", "1", "--log-every", "1", "--progress", "lines"] + list(flags)


# -- datasets into inspect / verify / the trainer ------------------------------

def dataset_case(rng, d, env):
    enc = rng.choice(["raw", "raw", "jpeg"])
    path = _p(d, "data.h5")
    H.write_dataset(path, rng, encoding=enc, size=8 if enc == "raw" else 16)
    done, refuse = H.mutate_file(rng, path, enc, H.DATASET_MUTATIONS)
    target = rng.choice(["inspect", "verify", "verify", "dry-run", "eval-only"])
    if target != "verify":
        refuse.discard("labels")  # only verify reads every label
    what = "dataset %s %s -> %s%s" % (enc, "+".join(done), target, _must(refuse))
    allowed = {2} if refuse else OK
    if target in ("inspect", "verify"):
        return Case([_p(env.bin, "resnet_prep"), target, path], what, allowed)
    if target == "dry-run":
        return Case(_dist(env, "--data", path, "--dry-run", "--checkpoint-dir", _p(d, "ck")), what, allowed)
    return Case(_dist(env, "--data", path, "--eval-only", "--init-from", env.base_ckpt,
                      "--checkpoint-dir", _p(d, "ck")), what, allowed | ({5} if not refuse else set()))


def _must(refuse):
    return " (must refuse: %s)" % ",".join(sorted(refuse)) if refuse else ""


# -- checkpoints into --resume / --eval-only / --init-from --dry-run --------------

def checkpoint_case(rng, d, env):
    ck = _p(d, "ck")
    os.makedirs(ck)
    name = _p(ck, "step-00000001.h5")
    shutil.copy(env.base_ckpt, name)
    done, refuse = H.mutate_file(rng, name, "ckpt", H.CKPT_MUTATIONS)
    target = rng.choice(["resume", "resume", "resume-auto", "eval-only", "dry-run"])
    if target not in ("resume", "dry-run"):
        refuse = set()  # --resume auto may skip the file and start fresh; weights-only reads no attributes
    what = "checkpoint %s -> %s%s" % ("+".join(done), target, _must(refuse))
    data = env.base_data
    if target == "resume":
        argv = _dist(env, "--data", data, "--resume", name, "--checkpoint-dir", ck, "--max-steps", "2",
                     "--checkpoint-every", "0")
    elif target == "resume-auto":
        argv = _dist(env, "--data", data, "--resume", "auto", "--checkpoint-dir", ck, "--max-steps", "2",
                     "--checkpoint-every", "0")
    elif target == "eval-only":
        argv = _dist(env, "--data", data, "--eval-only", "--init-from", name, "--checkpoint-dir", ck)
    else:
        argv = _dist(env, "--data", data, "--dry-run", "--resume", name, "--checkpoint-dir", ck)
    return Case(argv, what, {2} if refuse else OK | {5})  # 5: a NaN tensor may be the point


# -- class folders into resnet_prep imagenet ------------------------------------

def _odd_entry(rng, path):
    """A folder entry that is not a plain image file; returns its kind."""
    kind = rng.choice(["fifo", "symlink-loop", "dangling-symlink", "dir-named-jpg", "empty",
                       "text", "self-symlink-dir", "symlink-to-dev"])
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink-loop":
        os.symlink(path + ".b", path)
        os.symlink(path, path + ".b")
    elif kind == "dangling-symlink":
        os.symlink("/nonexistent/x.jpg", path)
    elif kind == "dir-named-jpg":
        os.mkdir(path)
    elif kind == "empty":
        open(path, "wb").close()
    elif kind == "text":
        with open(path, "w") as f:
            f.write("not an image\n" * rng.choice([1, 1000]))
    elif kind == "self-symlink-dir":
        os.symlink(".", path)
    else:
        os.symlink("/dev/zero", path)
    return kind


def _image(rng):
    if rng.random() < 0.6:
        kind, data = images.mutated_jpeg(rng)
        return "jpeg-" + kind, data, rng.choice([".jpg", ".JPEG", ".jpeg", ".png"])
    kind, data = images.mutated_png(rng)
    return "png-" + kind, data, rng.choice([".png", ".PNG", ".jpg"])


def folder_case(rng, d, env):
    kinds = []
    for split in ("train", "val"):
        for c in range(rng.choice([1, 2, 2, 3])):
            cdir = _p(d, split, "class%d" % c)
            os.makedirs(cdir)
            for i in range(rng.choice([1, 2, 3])):
                if rng.random() < 0.06:
                    kinds.append(_odd_entry(rng, _p(cdir, "odd%d.jpg" % i)))
                    continue
                if rng.random() < 0.5:  # a valid image beside the odd ones
                    data, kind, ext = images.jpeg(16, 16, 3), "jpeg-valid", ".jpg"
                else:
                    kind, data, ext = _image(rng)
                kinds.append(kind)
                with open(_p(cdir, "img%d%s" % (i, ext)), "wb") as f:
                    f.write(data)
    if rng.random() < 0.05:
        os.symlink("..", _p(d, "train", "class0", "loop"))
        kinds.append("parent-symlink")
    out = _p(d, "out.h5")
    argv = [_p(env.bin, "resnet_prep"), "imagenet", "--train", _p(d, "train"), "--val", _p(d, "val"),
            "--out", out, "--size", rng.choice(["8", "16", "1", "33"])]
    argv += rng.choice([[], ["--encoding", "jpeg"], ["--full-decode"], ["--strict"],
                        ["--encoding", "jpeg", "--quality", rng.choice(["1", "100"])],
                        ["--limit-per-class", "1"]])
    return Case(argv, "imagenet folder: " + ",".join(sorted(set(kinds))), sentinel=_sentinel(rng, out))


def _sentinel(rng, out):
    """Now and then an existing output file, which a failed run must leave alone."""
    if rng.random() < 0.2:
        with open(out, "wb") as f:
            f.write(b"precious")
        return out
    return None


# -- CIFAR binary version --------------------------------------------------------

def cifar_case(rng, d, env):
    which = rng.choice(["cifar10", "cifar100"])
    rec = 3073 if which == "cifar10" else 3074
    classes = 10 if which == "cifar10" else 100
    src = _p(d, "cifar")
    os.makedirs(src)
    names = (["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]) if which == "cifar10" \
        else ["train.bin", "test.bin"]
    bad = rng.choice(names)
    kind = rng.choice(["valid", "short-record", "empty", "label-range", "missing", "fifo", "dir",
                       "huge-sparse", "bitflip", "meta"])
    for name in names:
        path = _p(src, name)
        n = rng.choice([1, 3, 5])
        buf = bytearray(np.random.default_rng(rng.randrange(1 << 30)).integers(0, 256, n * rec, dtype=np.uint8))
        for r in range(n):
            buf[r * rec + rec - 3073] = r % classes  # the (fine) label byte
            if which == "cifar100":
                buf[r * rec] = r % 20
        if name == bad:
            if kind == "short-record":
                buf = buf[:-rng.randrange(1, rec)]
            elif kind == "empty":
                buf = b""
            elif kind == "label-range":
                buf[rec - 3073] = rng.choice([classes, 255, 200])
            elif kind == "bitflip":
                buf = images.bitflip(rng, bytes(buf), 16)
            elif kind == "missing":
                continue
            elif kind == "fifo":
                os.mkfifo(path)
                continue
            elif kind == "dir":
                os.mkdir(path)
                continue
            elif kind == "huge-sparse":  # 8 GiB that are not whole records: refused from the size
                with open(path, "wb") as f:
                    f.truncate(2 ** 33 - 2 ** 33 % rec + 1)
                continue
        with open(path, "wb") as f:
            f.write(bytes(buf))
    if kind == "meta" or rng.random() < 0.3:
        meta = _p(src, "batches.meta.txt" if which == "cifar10" else "fine_label_names.txt")
        with open(meta, "wb") as f:
            f.write(rng.choice([b"", b"a\n" * 1000, b"x" * 100000, b"\xff\xfe\x00\n" * 10, b"cat\ndog"]))
    out = _p(d, "out.h5")
    argv = [_p(env.bin, "resnet_prep"), which, "--in", src, "--out", out]
    if rng.random() < 0.3:
        argv += ["--val-split", rng.choice(["0", "1", "3", "100000", "-1", "x"])]
    return Case(argv, "%s %s %s" % (which, kind, bad), sentinel=_sentinel(rng, out))


# -- IDX (MNIST) -------------------------------------------------------------------

def _idx(dtype_code, dims, payload):
    return struct.pack(">BBBB", 0, 0, dtype_code, len(dims)) + b"".join(struct.pack(">I", x & 0xFFFFFFFF) for x in dims) + payload


def idx_case(rng, d, env):
    n_train, n_test, h, w = rng.choice([(6, 4, 5, 5), (10, 3, 28, 28), (2, 2, 1, 1)])
    files = {
        "train-images": _idx(8, [n_train, h, w], bytes(n_train * h * w)),
        "train-labels": _idx(8, [n_train], bytes(i % 3 for i in range(n_train))),
        "test-images": _idx(8, [n_test, h, w], bytes(n_test * h * w)),
        "test-labels": _idx(8, [n_test], bytes(i % 3 for i in range(n_test))),
    }
    bad = rng.choice(sorted(files))
    kind = rng.choice(["valid", "magic", "dtype", "ndims", "huge-dims", "zero-dims", "count", "truncated",
                       "label-255", "gzip", "bad-gzip", "gzip-bomb", "bitflip", "dir"])
    data = files[bad]
    is_img = "images" in bad
    if kind == "magic":
        data = b"\x01\x02" + data[2:]
    elif kind == "dtype":
        data = data[:2] + bytes([rng.choice([0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF])]) + data[3:]
    elif kind == "ndims":
        data = data[:3] + bytes([rng.choice([0, 1, 2, 4, 255])]) + data[4:]
    elif kind == "huge-dims":
        dims = [rng.choice([2 ** 31, 2 ** 32 - 1, 65536]), h, w] if is_img else [rng.choice([2 ** 31, 2 ** 32 - 1])]
        if is_img and rng.random() < 0.5:
            dims = [2, 2 ** 31 - 1, 2 ** 31 - 1]
        data = _idx(8, dims, data[4 + 4 * len(dims):])
    elif kind == "zero-dims":
        dims = [0, h, w] if is_img else [0]
        if is_img and rng.random() < 0.5:
            dims = [n_train, 0, w]
        data = _idx(8, dims, b"")
    elif kind == "count":
        dims = [n_train + 1, h, w] if is_img else [n_train + 5]
        data = _idx(8, dims, data[4 + 4 * len(dims):])
    elif kind == "truncated":
        data = images.truncate(rng, data)
    elif kind == "label-255" and not is_img:
        data = data[:-1] + b"\xff"
    elif kind == "bitflip":
        data = images.bitflip(rng, data, 4)
    paths = {}
    for name, content in files.items():
        c = data if name == bad else content
        gz = kind in ("gzip", "bad-gzip", "gzip-bomb") and name == bad
        path = _p(d, name + ("-idx.gz" if gz else "-idx"))
        paths[name] = path
        if name == bad and kind == "dir":  # (a FIFO named on the command line may block, as in cat)
            os.mkdir(path)
            continue
        if gz:
            if kind == "gzip-bomb":  # small file, huge declared and real content
                dims = [2 ** 20, 28, 28] if is_img else [2 ** 30]
                c = _idx(8, dims, b"")
                z = gzip.compress(c + bytes(2 ** 22), 9)
            else:
                z = gzip.compress(c)
            if kind == "bad-gzip":
                z = images.bitflip(rng, z, 3)
            c = z
        with open(path, "wb") as f:
            f.write(c)
    out = _p(d, "out.h5")
    argv = [_p(env.bin, "resnet_prep"), "idx", "--train-images", paths["train-images"],
            "--train-labels", paths["train-labels"], "--test-images", paths["test-images"],
            "--test-labels", paths["test-labels"], "--out", out]
    if rng.random() < 0.3:
        argv += ["--val-split", rng.choice(["1", str(n_train), str(n_train + 1), "0", "-2"])]
    if rng.random() < 0.3:
        cl = _p(d, "classes.txt")
        with open(cl, "wb") as f:
            f.write(rng.choice([b"", b"a\nb\n", b"a\nb\nc\n", b"\n\n\n", b"x" * 70000 + b"\n", b"a\x00b\nc\nd\n"]))
        argv += ["--classes", cl]
    return Case(argv, "idx %s %s" % (kind, bad), sentinel=_sentinel(rng, out))


# -- resnet_prep synthetic with odd flags ---------------------------------------------

ODD_NUMBERS = ["0", "1", "-1", "2", "3", "4097", "4096x", "", " 3", "3 ", "0x10", "1e3", "+5", "--1",
               "99999999999999999999", "-9223372036854775808", "9223372036854775807", "nan", "٣"]


def synthetic_case(rng, d, env):
    out = _p(d, "out.h5")
    flags = {"--classes": "3", "--train": "8", "--val": "4", "--size": "8", "--channels": "3"}
    for _ in range(rng.choice([1, 2])):
        k = rng.choice(sorted(flags) + ["--test", "--seed"])
        v = rng.choice(ODD_NUMBERS)
        if k in ("--train", "--val", "--test") and v in ("9223372036854775807", "4097"):
            v = "99999999999999999999"  # stays a refusal: a valid huge count is a real job
        if k == "--size" and v == "9223372036854775807":
            v = "4097"
        flags[k] = v
    argv = [_p(env.bin, "resnet_prep"), "synthetic", "--out", out]
    for k, v in flags.items():
        argv += [k, v] if rng.random() < 0.9 else ["%s=%s" % (k, v)]
    if rng.random() < 0.1:
        argv += rng.choice([["--out", ""], ["--bogus"], ["--classes"], ["extra-arg"], ["--out", d]])
    return Case(argv, "synthetic " + " ".join(argv[4:]), sentinel=_sentinel(rng, out))


# -- resnet_plot on mutated metrics files -----------------------------------------------

def _metrics_line(rng):
    kind = rng.choice(["train", "train", "val", "lr", "config", "test", "checkpoint", "bogus", "",
                       'tr"ain', "train\\"])
    rec = {"kind": kind, "step": rng.choice([1, 2, 3, 10, 0, -1, 1e300, 1e308, 2 ** 63])}
    for k in ("loss", "top1", "top5", "lr", "epoch", "time"):
        if rng.random() < 0.8:
            rec[k] = rng.choice([0.5, 0.1, 1.0, 0, -1, 2.5, 1e-320, 1e308, None, "x", [], {}])
    line = json.dumps(rec)
    r = rng.random()
    if r < 0.1:
        line = line.replace("0.5", rng.choice(["nan", "inf", "-inf", "1e999", "0x1p3", "NaN"]))
    elif r < 0.15:
        line = line[: rng.randrange(len(line) + 1)]
    elif r < 0.2:
        line = line + " " * 9000 + '"kind":"train"'
    elif r < 0.25:
        line = '{"kind":"train","step":1,"loss":1,' + '"x":' * 3000 + "1}"
    elif r < 0.3:
        line = line.replace('"', "'")
    elif r < 0.35:
        line = line.replace("kind", "kind\x00").replace("step", "st\xffep")
    return line


def plot_case(rng, d, env):
    lines = [_metrics_line(rng) for _ in range(rng.choice([0, 1, 2, 5, 30]))]
    path = _p(d, rng.choice(["m.jsonl", "bob's m.jsonl", "m `x`.jsonl", "m\n.jsonl", "-m.jsonl"]))
    with open(path, "wb") as f:
        f.write("\n".join(lines).encode("utf-8", "surrogateescape"))
        if rng.random() < 0.1:
            f.write(bytes(rng.randrange(256) for _ in range(200)))
    argv = [_p(env.bin, "resnet_plot"), path, "-o", _p(d, rng.choice(["out.png", "o'u\"t.png", "o\\ut.png"]))]
    if rng.random() < 0.4:
        argv += ["--title", rng.choice(["a'b", 'a"b', "a\\", "`id`", "$(id)", "@x", "\n", "x" * 5000, "\xe9"])]
    if rng.random() < 0.3:
        argv.insert(1, "--")
    return Case(argv, "plot %d lines" % len(lines))


GENERATORS = [  # (weight, name, generator)
    (30, "dataset", dataset_case),
    (15, "checkpoint", checkpoint_case),
    (15, "folder", folder_case),
    (8, "cifar", cifar_case),
    (10, "idx", idx_case),
    (7, "synthetic", synthetic_case),
    (15, "plot", plot_case),
]


def pick(rng, only=None):
    gens = [g for g in GENERATORS if not only or g[1] in only]
    total = sum(w for w, _, _ in gens)
    x = rng.uniform(0, total)
    for w, name, gen in gens:
        x -= w
        if x <= 0:
            return name, gen
    return gens[-1][1], gens[-1][2]
