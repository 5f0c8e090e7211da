#!/usr/bin/env python3
"""Polycrystal micrographs drawn by a second, independent method: a domain the shipped grain
networks never saw, for `synthscope adapt grain` (issue 19).

Nothing here reuses the engine (crates/synth/src/tem.rs); the two differ in every part:

| | engine (`generate tem`) | this script |
|---|---|---|
| grains | power diagram of lognormal circles: straight facets | additively weighted, anisotropic Voronoi cells (hyperbolic boundaries: curved, grains elongated along one direction) |
| grain contrast | one diffraction grey per grain, high spread | low spread around a mid grey, a few strongly diffracting (dark) grains |
| inside grains | flat + illumination gradient | bend contours (dark bands across a grain) and thickness fringes parallel to the boundaries |
| boundaries | the step between grains | a dark groove with a bright Fresnel halo either side |
| optics, noise | Gaussian blur, Poisson + read noise | wider blur, Poisson at lower dose, a smooth background and a fixed-pattern gain of the camera |

Writes the `generate tem` layout (`<name>.png`, `<name>_boundary.png`, `<name>_grains.png`,
`labels.jsonl` with `grain_ecd_px`), so `synthscope eval grain --data DIR` scores the shipped
pipeline on it unchanged; `--images-only` writes the micrographs alone (the unlabelled images a
scientist would hand to `adapt grain`).

    python3 tools/independent_polycrystals.py --count 300 --seed 1 --out data/indep-unlabelled --images-only
    python3 tools/independent_polycrystals.py --count 200 --seed 2 --out data/indep-heldout

Needs numpy, scipy and Pillow.
"""

import argparse
import json
import math
import os

import numpy as np
from PIL import Image
from scipy import ndimage

WIDTH_PX, HEIGHT_PX = 496, 96


def cells(rng, width, height):
    """Grain ids (H × W, 0-based) of an anisotropic, additively weighted Voronoi diagram."""
    mean_diameter_px = rng.uniform(18.0, 30.0)
    margin = 2.0 * mean_diameter_px
    area = (width + 2 * margin) * (height + 2 * margin)
    count = rng.poisson(area / (math.pi / 4 * mean_diameter_px**2))
    seeds = np.column_stack(
        [rng.uniform(-margin, width + margin, count), rng.uniform(-margin, height + margin, count)]
    )
    # Additive weights: hyperbolic (curved) boundaries, every cell connected and star-shaped.
    weights_px = rng.uniform(0.0, 0.25 * mean_diameter_px, count)
    stretch = rng.uniform(1.2, 1.8)
    angle = rng.uniform(0, math.pi)
    c, s = math.cos(angle), math.sin(angle)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    best = np.full((height, width), np.inf)
    label = np.zeros((height, width), dtype=np.int64)
    for i, ((sx, sy), w) in enumerate(zip(seeds, weights_px)):
        dx, dy = xs - sx, ys - sy
        along, across = dx * c + dy * s, -dx * s + dy * c
        d = np.sqrt((along / stretch) ** 2 + (across * stretch) ** 2) - w
        closer = d < best
        best[closer] = d[closer]
        label[closer] = i
    return label, {
        "mean_diameter_px": mean_diameter_px,
        "stretch": stretch,
        "stretch_angle_rad": angle,
        "seeds": int(count),
    }


def boundary_and_grains(label):
    """A one-pixel boundary where a right or lower neighbour belongs to another cell, and the
    4-connected grains between boundaries (ids from 1; 0 on boundaries)."""
    b = np.zeros(label.shape, dtype=bool)
    b[:, :-1] |= label[:, :-1] != label[:, 1:]
    b[:-1, :] |= label[:-1, :] != label[1:, :]
    grains, count = ndimage.label(~b, structure=[[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    return b, grains, count


def appearance(rng, label, boundary):
    """Bright-field intensity in [0, 1] of the cells, before optics and noise."""
    h, w = label.shape
    n = label.max() + 1
    grey = np.clip(rng.normal(0.58, 0.09, n), 0.3, 0.85)
    dark = rng.random(n) < 0.12
    grey[dark] = rng.uniform(0.18, 0.35, dark.sum())
    image = grey[label]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    # Distance to the nearest boundary: grooves, halos and thickness fringes follow it.
    dist = ndimage.distance_transform_edt(~boundary)
    # Bend contours: a dark band along a random line through some grains.
    for g in np.flatnonzero(rng.random(n) < 0.35):
        inside = label == g
        if inside.sum() < 40:
            continue
        cy, cx = ys[inside].mean(), xs[inside].mean()
        a = rng.uniform(0, math.pi)
        off = (xs - cx) * math.sin(a) - (ys - cy) * math.cos(a) + rng.normal(0, 4)
        width_px = rng.uniform(1.5, 4.0)
        band = rng.uniform(0.15, 0.4) * np.exp(-0.5 * (off / width_px) ** 2)
        image[inside] -= band[inside]
    # Thickness fringes parallel to the boundaries, fading into the grain.
    period_px = rng.uniform(4.0, 7.0)
    fringe = rng.uniform(0.03, 0.07)
    image += fringe * np.cos(2 * math.pi * dist / period_px) * np.exp(-dist / 6.0)
    # A dark groove on the boundary with a bright Fresnel halo beside it.
    groove = rng.uniform(0.3, 0.5)
    halo = rng.uniform(0.03, 0.08)
    image -= groove * np.exp(-0.5 * (dist / 1.0) ** 2)
    image += halo * np.exp(-0.5 * ((dist - 2.0) / 0.8) ** 2)
    # A smooth background from a few long waves.
    for _ in range(3):
        kx, ky = rng.normal(0, 1.0 / 200), rng.normal(0, 1.0 / 60)
        image += 0.04 * np.cos(2 * math.pi * (kx * xs + ky * ys) + rng.uniform(0, 2 * math.pi))
    return np.clip(image, 0.0, 1.0), {
        "fringe_period_px": period_px,
        "groove_depth": groove,
        "halo": halo,
    }


def camera(rng, image):
    """Optics and detection: blur, fixed-pattern gain, Poisson counting, 8-bit grey."""
    sigma_px = rng.uniform(1.2, 1.8)
    blurred = ndimage.gaussian_filter(image, sigma_px)
    gain = 1.0 + 0.03 * rng.standard_normal(image.shape)
    dose = rng.uniform(80.0, 200.0)
    counts = rng.poisson(np.clip(blurred * gain, 0, None) * dose) / dose
    grey = np.clip(np.round(counts * 255.0 * rng.uniform(0.8, 0.95) + rng.uniform(0, 20)), 0, 255)
    return grey.astype(np.uint8), {"blur_sigma_px": sigma_px, "dose_per_px": dose}


def draw(seed, index):
    rng = np.random.default_rng([seed, index, 19])
    label, geometry = cells(rng, WIDTH_PX, HEIGHT_PX)
    boundary, grains, count = boundary_and_grains(label)
    intensity, look = appearance(rng, label, boundary)
    grey, optics = camera(rng, intensity)
    areas = np.bincount(grains.ravel(), minlength=count + 1)[1:]
    return grey, boundary, grains, areas, {**geometry, **look, **optics}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--images-only", action="store_true", help="micrographs without masks or labels")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    lines = []
    for i in range(a.count):
        grey, boundary, grains, areas, params = draw(a.seed, i)
        name = f"indep_{i:06d}"
        Image.fromarray(grey).save(os.path.join(a.out, f"{name}.png"))
        if a.images_only:
            continue
        Image.fromarray((boundary * 255).astype(np.uint8)).save(
            os.path.join(a.out, f"{name}_boundary.png")
        )
        Image.fromarray(grains.astype(np.uint16)).save(os.path.join(a.out, f"{name}_grains.png"))
        ecd = [round(math.sqrt(4 * a_px / math.pi), 3) for a_px in areas.tolist()]
        lines.append(
            {
                "kind": "tem",
                "index": i,
                "seed": a.seed,
                "file": f"{name}.png",
                "boundary": f"{name}_boundary.png",
                "grains": f"{name}_grains.png",
                "width": WIDTH_PX,
                "height": HEIGHT_PX,
                "grain_count": len(ecd),
                "grain_area_px": areas.tolist(),
                "grain_ecd_px": ecd,
                "generator": "tools/independent_polycrystals.py",
                "params": params,
                "tags": 0,
            }
        )
    if not a.images_only:
        with open(os.path.join(a.out, "labels.jsonl"), "w") as f:
            for line in lines:
                f.write(json.dumps(line, sort_keys=True) + "\n")
    print(f"wrote {a.count} micrographs to {a.out}")


if __name__ == "__main__":
    main()
