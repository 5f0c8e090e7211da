"""Reference values for imaging::similarity and the S₂ / W1 statistics, from scikit-image and scipy.

The arrays are defined by formulas (no random numbers), so the Rust test
(`imaging::similarity` tests, `stats` tests) builds the same arrays and compares with the
numbers this script prints. Run: python3 tools/similarity_reference.py (scikit-image ≥ 0.22).
"""
import numpy as np
from scipy.stats import wasserstein_distance, ks_2samp
from skimage.metrics import structural_similarity, peak_signal_noise_ratio


def pair(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    a = 0.5 + 0.3 * np.sin(0.31 * x) * np.cos(0.23 * y) + 0.1 * ((x * 31 + y * 17) % 13) / 13
    b = a + 0.08 * np.sin(0.9 * x + 0.4 * y) + 0.05 * ((x * 7 + y * 11) % 5) / 5 - 0.02
    # The Rust side holds images as f32: round the same way.
    return a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)


def ssim(a, b, r):
    return structural_similarity(a, b, data_range=r, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


for (w, h, r) in [(48, 40, 1.0), (96, 64, 2.0), (13, 11, 1.0)]:
    a, b = pair(w, h)
    print(f"{w}x{h} range {r}: ssim {ssim(a, b, r):.10f} psnr {peak_signal_noise_ratio(a, b, data_range=r):.10f}")

ecd_a = [1.0 + (i * 37 % 101) / 10 for i in range(60)]
ecd_b = [0.5 + (i * 53 % 89) / 8 for i in range(45)]
print(f"w1 {wasserstein_distance(ecd_a, ecd_b):.10f} ks {ks_2samp(ecd_a, ecd_b).statistic:.10f}")
