"""Writes the JPEG seed files of the fuzzing campaign (crates/imaging/tests/fuzz.rs) with Pillow,
the common reference writer (pip install pillow). Run: python3 tools/jpeg_reference.py
(Pillow 13.0.0 wrote the files).

- frame_gray.jpg: 40 × 28 greyscale, baseline, quality 90;
- frame_rgb_progressive.jpg: the same frame in colour (a tint per channel), progressive,
  4:2:0 chroma subsampling, restart markers every row of blocks.
"""
import numpy as np
from PIL import Image

OUT = "crates/imaging/tests/data"


def frame(w, h):
    """A ring around (20, 14) on a little texture, in 0–255."""
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot(x - 20.0, y - 14.0)
    v = 200.0 * np.exp(-((r - 12.0) ** 2) / 8.0) + (np.arange(w * h).reshape(h, w) % 7) * 4
    return np.clip(v, 0, 255).astype(np.uint8)


def main():
    g = frame(40, 28)
    Image.fromarray(g, "L").save(f"{OUT}/frame_gray.jpg", quality=90)
    rgb = np.stack([g, (g * 0.7).astype(np.uint8), 255 - g], axis=-1)
    Image.fromarray(rgb, "RGB").save(
        f"{OUT}/frame_rgb_progressive.jpg", quality=85, progressive=True, subsampling=2,
        restart_marker_rows=1,
    )


if __name__ == "__main__":
    main()
