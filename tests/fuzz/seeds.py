#!/usr/bin/env python3
"""Writes the starting corpus of the libFuzzer image harness: JPEGs (grey,
RGB, CMYK, progressive) and PNGs (every colour type, 16-bit, interlaced)
from images.py, each behind the harness's one-byte scale selector.

    python3 tests/fuzz/seeds.py OUTDIR
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import images  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "grey.jpg": images.jpeg(16, 24, 1),
        "rgb.jpg": images.jpeg(40, 17, 3),
        "cmyk.jpg": images.jpeg(16, 16, 4),
        "progressive.jpg": images.jpeg(24, 24, 3, progressive=True, extra_scans=2),
        "grey.png": images.png(13, 7, 0),
        "rgb.png": images.png(13, 7, 2),
        "palette.png": images.png(9, 9, 3),
        "rgba16.png": images.png(5, 5, 6, 16),
        "interlaced.png": images.png(16, 16, 2, interlace=1),
    }
    for i, (name, data) in enumerate(sorted(seeds.items())):
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes([i & 3]) + data)


if __name__ == "__main__":
    main()
