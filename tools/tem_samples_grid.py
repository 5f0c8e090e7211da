#!/usr/bin/env python3
"""Side-by-side figure of the TEM generator: for each of the first N masks, the mask, the
engine's micrograph of it and the generator's samples of it.

    synthscope generate tem --count 4 --seed 7 --out engine/
    synthscope sample tem-diffusion --model tem.bin --generate 4 --seed 7 --out gen-a/
    synthscope sample tem-diffusion --model tem.bin --generate 4 --seed 7 --noise-seed 1 --out gen-b/
    python3 tools/tem_samples_grid.py engine/ gen-a/ [gen-b/ ...] --count 4 --out grid.png

Sample directories drawn with the same --seed share their masks with the engine directory;
--noise-seed draws other samples of them.
"""
import argparse
import os

from PIL import Image, ImageDraw


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("engine")
    p.add_argument("samples", nargs="+")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    rows = []
    for i in range(a.count):
        name = f"tem_{i:06d}"
        row = [("mask", Image.open(os.path.join(a.engine, name + "_boundary.png")).convert("L")),
               ("engine", Image.open(os.path.join(a.engine, name + ".png")).convert("L"))]
        for k, d in enumerate(a.samples):
            row.append((f"sample {k + 1}", Image.open(os.path.join(d, name + ".png")).convert("L")))
        rows.append(row)
    w, h = rows[0][0][1].size
    gap, label = 4, 14
    cols = len(rows[0])
    grid = Image.new("L", (cols * (w + gap), len(rows) * (h + gap) + label), 255)
    draw = ImageDraw.Draw(grid)
    for c, (title, _) in enumerate(rows[0]):
        draw.text((c * (w + gap) + 4, 1), title, fill=0)
    for r, row in enumerate(rows):
        for c, (_, im) in enumerate(row):
            grid.paste(im, (c * (w + gap), label + r * (h + gap)))
    grid.save(a.out)


if __name__ == "__main__":
    main()
