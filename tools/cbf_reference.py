"""Writes the CBF test files of crates/imaging/tests/cbf.rs with fabio, the field's reference
writer (pip install fabio). The pixel values follow formulas the Rust test repeats, so the
test checks every pixel. Run: python3 tools/cbf_reference.py (fabio 2026.6.0 wrote the files).
"""
import numpy as np
from fabio.cbfimage import CbfImage

OUT = "crates/imaging/tests/data"
PILATUS_HEADER = """# Detector: PILATUS3 6M, S/N 60-0100
# 2026-12-06T04:50:00.000
# Pixel_size 172e-6 m x 172e-6 m
# Silicon sensor, thickness 0.001000 m
# Exposure_time 0.0990000 s
# Exposure_period 0.1000000 s
# Count_cutoff 1048575 counts
# Wavelength 1.0332 A
# Detector_distance 0.31234 m
# Beam_xy (40.50, 22.25) pixels
"""


def pilatus(h, w):
    """Ring-like counts with every byte-offset escape, gaps (-1) and dead pixels (-2)."""
    y, x = np.mgrid[0:h, 0:w]
    r = np.hypot(x - 40.5, y - 22.25)
    v = (1000 * np.exp(-((r - 15) ** 2) / 8) + (x * 7 + y * 3) % 11).astype(np.int64)
    v[(x * 13 + y * 5) % 97 == 0] = 200000 + x[(x * 13 + y * 5) % 97 == 0]  # i32 escapes
    v[:, 30] = -1  # a module gap
    v[5, 7] = -2   # a dead pixel
    return v.astype(np.int32)


def write(name, data, header=None):
    img = CbfImage(data=data)
    if header:
        img.header["_array_data.header_convention"] = "PILATUS_1.2"
        img.header["_array_data.header_contents"] = header
    img.write(f"{OUT}/{name}")


write("pilatus_61x97.cbf", pilatus(61, 97), PILATUS_HEADER)
y, x = np.mgrid[0:20, 0:33]
write("unsigned16_20x33.cbf", ((x * 977 + y * 131) % 65536).astype(np.uint16))
