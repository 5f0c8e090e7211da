#!/usr/bin/env python3
"""A grid of 16-bit detector images on a log scale, one row per directory: the figure of
docs/diffusion.md. Each directory is one written by `synthscope sample diffusion` (or
`generate saxs`); the row is labelled with its first image's tags.

    python3 tools/sample_grid.py --out docs/diffusion-samples.png --per-row 6 DIR [DIR ...]
"""
import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def log_image(path: Path) -> np.ndarray:
    counts = np.asarray(Image.open(path), dtype=np.float64)
    v = np.log1p(np.clip(counts, 0, None)) / np.log(65536.0)
    # Stretch between the 1st and 99.8th percentile, as the app's log display does.
    lo, hi = np.percentile(v, [1, 99.8])
    return np.clip((v - lo) / max(hi - lo, 1e-9), 0, 1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dirs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-row", type=int, default=6)
    p.add_argument("--side", type=int, default=128, help="pixels per tile")
    a = p.parse_args()
    label_w, side, gap = 230, a.side, 4
    rows = []
    for d in a.dirs:
        lines = [json.loads(l) for l in (d / "labels.jsonl").read_text().splitlines() if l.strip()]
        rows.append((d, lines[: a.per_row]))
    w = label_w + a.per_row * (side + gap)
    h = len(rows) * (side + gap)
    sheet = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (d, lines) in enumerate(rows):
        y = r * (side + gap)
        tags = ", ".join(lines[0].get("tags", [])) if lines else ""
        kind = "diffusion" if lines and lines[0].get("generated_by") == "diffusion" else "engine"
        draw.text((4, y + 4), f"{kind}: {d.name}", fill=(0, 0, 0))
        for k, chunk in enumerate([tags[i : i + 34] for i in range(0, len(tags), 34)][:6]):
            draw.text((4, y + 20 + 12 * k), chunk, fill=(60, 60, 60))
        for c, line in enumerate(lines):
            v = log_image(d / line["file"])
            # A perceptual-ish ramp (black → purple → orange → yellow) without matplotlib.
            rgb = np.stack([np.clip(1.6 * v, 0, 1), np.clip(1.6 * v - 0.6, 0, 1), np.clip(np.sin(np.pi * v) * 0.8, 0, 1)], -1)
            tile = Image.fromarray((rgb * 255).astype(np.uint8)).resize((side, side), Image.BILINEAR)
            sheet.paste(tile, (label_w + c * (side + gap), y))
    sheet.save(a.out)
    print(f"wrote {a.out} ({w}x{h})")


if __name__ == "__main__":
    main()
