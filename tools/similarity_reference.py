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

# MS-SSIM (Wang, Simoncelli & Bovik 2003) has no scikit-image function: this is an independent
# numpy version of imaging::similarity::ms_ssim's conventions (scipy's Gaussian filter as
# scikit-image uses it, contrast-structure at scales 1-4, SSIM at 5, 2x2 means between scales,
# negative terms as 0).
from scipy.ndimage import gaussian_filter

WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def terms(a, b, r):
    f = lambda x: gaussian_filter(x, sigma=1.5, truncate=3.5, mode="reflect")
    ux, uy = f(a), f(b)
    vx, vy, vxy = f(a * a) - ux * ux, f(b * b) - uy * uy, f(a * b) - ux * uy
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    lum = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    crop = (slice(5, -5), slice(5, -5))
    return (lum * cs)[crop].mean(), cs[crop].mean()


def halve(x):
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim(a, b, r):
    out = 1.0
    for i, w in enumerate(WEIGHTS):
        s, cs = terms(a, b, r)
        out *= max(s if i == len(WEIGHTS) - 1 else cs, 0.0) ** w
        a, b = halve(a), halve(b)
    return out


a, b = pair(200, 181)
print(f"200x181 range 1.0: ms-ssim {ms_ssim(a, b, 1.0):.10f} (skimage ssim {ssim(a, b, 1.0):.10f})")
