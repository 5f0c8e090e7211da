"""Compares Synthscope's UMAP (labels::umap) with umap-learn on the same embeddings.

    synthscope bench latent --images 1000 --dump /tmp/emb.csv
    pip install umap-learn scikit-learn
    python3 tools/compare_umap.py /tmp/emb.csv

Prints umap-learn's time and trustworthiness (k = 5) with seed 000's settings (n_neighbors 5,
min_dist 0.5), and the same nearest-neighbour class agreement `bench latent` prints, so the two
implementations can be compared on one machine. A reference, never a runtime dependency.
"""

import sys
import time

import numpy as np
import umap
from sklearn.manifold import trustworthiness


def same_class_neighbour(x, y):
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return float((y[d.argmin(1)] == y).mean())


def main(path):
    data = np.loadtxt(path, delimiter=",", dtype=np.float32)
    labels, x = data[:, 0].astype(int), data[:, 1:]
    times = []
    for seed in (0, 1, 2):
        t = time.perf_counter()
        reducer = umap.UMAP(n_neighbors=5, min_dist=0.5, random_state=seed)
        xy = reducer.fit_transform(x)
        times.append(time.perf_counter() - t)
    print(f"umap-learn {umap.__version__}: {len(x)} points, {x.shape[1]} features")
    print(f"time (median of 3, includes numba compilation on the first) {np.median(times):.2f} s")
    print(f"trustworthiness (k = 5) {trustworthiness(x, xy, n_neighbors=5):.3f}")
    print(f"nearest neighbour of the same class: embedding {same_class_neighbour(x, labels):.3f}, "
          f"projection {same_class_neighbour(xy, labels):.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
