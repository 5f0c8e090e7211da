"""Gathers the images that are no scattering pattern which realism-v2's gate learnt from and was
checked on (docs/scattering-classifiers.md): photographs that ship with scikit-image
(pip install scikit-image) and TEM micrographs drawn by the engine.

    python3 scripts/no_pattern_images.py data/nopattern-train data/nopattern-eval [SYNTHSCOPE]

SYNTHSCOPE is the synthscope binary (default: synthscope on the PATH). The two photographs of
the CLI's ten-frame test (cameraman, astronaut) are in neither set.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import skimage

TRAIN_PHOTOS = [
    "brick.png", "cell.png", "clock_motion.png", "coins.png", "grass.png", "gravel.png",
    "horse.png", "ihc.png", "logo.png", "microaneurysms.png", "moon.png",
    "motorcycle_left.png", "page.png", "phantom.png", "text.png", "color.png",
    "hubble_deep_field.jpg", "retina.jpg", "rocket.jpg",
]
EVAL_PHOTOS = ["chelsea.png", "coffee.png"]


def micrographs(binary, out, count, seed, extra):
    """`count` engine TEM micrographs (not their masks) of batch `seed` into `out`."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([binary, "generate", "tem", "--count", str(count), "--seed", str(seed),
                        "--width", "256", "--height", "256", "--out", tmp] + extra,
                       check=True, stdout=subprocess.DEVNULL)
        for name in sorted(os.listdir(tmp)):
            if name.startswith("tem_") and name.endswith(".png") and "_" not in name[4:]:
                shutil.copy(os.path.join(tmp, name), os.path.join(out, name))


def main():
    train, held_out = sys.argv[1], sys.argv[2]
    binary = sys.argv[3] if len(sys.argv) > 3 else "synthscope"
    source = os.path.join(os.path.dirname(skimage.__file__), "data")
    for out, names in [(train, TRAIN_PHOTOS), (held_out, EVAL_PHOTOS)]:
        os.makedirs(out, exist_ok=True)
        for name in names:
            shutil.copy(os.path.join(source, name), os.path.join(out, name))
    micrographs(binary, train, 24, 50, ["--grain-diameter", "30"])
    micrographs(binary, held_out, 6, 51, [])


if __name__ == "__main__":
    main()
