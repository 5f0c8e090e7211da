#!/usr/bin/env python3
"""Stacks grey images (8- or 16-bit PNG, same width) one under another, each with a caption
above it, scaled up by an integer factor: the side-by-side figures of the model cards.

    python3 tools/montage.py --scale 2 --out docs/adapt-grain.png \\
        "a micrograph of the new domain=data/indep-heldout/indep_000000.png" \\
        "its true boundaries=data/indep-heldout/indep_000000_boundary.png" ...

Needs Pillow and numpy.
"""
import argparse

import numpy as np
from PIL import Image, ImageDraw

CAPTION_PX = 16


def grey8(path):
    a = np.asarray(Image.open(path))
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2)
    if a.dtype != np.uint8:
        lo, hi = float(a.min()), float(a.max())
        a = (a.astype(np.float64) - lo) / max(hi - lo, 1e-12) * 255.0
    return a.astype(np.uint8)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", nargs="+", help="CAPTION=PATH, top to bottom")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    tiles = []
    for row in a.rows:
        caption, _, path = row.rpartition("=")
        image = Image.fromarray(grey8(path))
        w, h = image.size
        image = image.resize((w * a.scale, h * a.scale), Image.NEAREST)
        tile = Image.new("L", (image.width, image.height + CAPTION_PX), 255)
        ImageDraw.Draw(tile).text((4, 2), caption, fill=0)
        tile.paste(image, (0, CAPTION_PX))
        tiles.append(tile)
    width = max(t.width for t in tiles)
    out = Image.new("L", (width, sum(t.height for t in tiles)), 255)
    y = 0
    for t in tiles:
        out.paste(t, (0, y))
        y += t.height
    out.save(a.out, optimize=True)
    print(f"wrote {a.out} ({out.width} × {out.height})")


if __name__ == "__main__":
    main()
