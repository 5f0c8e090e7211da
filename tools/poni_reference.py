"""Writes the PONI test files of crates/imaging/tests/poni.rs with pyFAI (pip install pyFAI) and
prints the beam centre (getFit2D) and q (qArray, nm⁻¹) at a few pixels that the Rust test
compares with. Run: python3 tools/poni_reference.py (pyFAI 2026.9.0 wrote the files).
"""
import warnings
warnings.filterwarnings("ignore")
from pyFAI.integrator.azimuthal import AzimuthalIntegrator
from pyFAI.detectors import detector_factory, Detector

OUT = "crates/imaging/tests/data"
PIXELS = [(0, 0), (400, 500), (900, 980), (12, 700)]  # (column, row)

tilted = AzimuthalIntegrator(dist=0.31234, poni1=0.0712, poni2=0.0845, rot1=0.012, rot2=-0.007,
                             rot3=0.3, detector=detector_factory("Pilatus1M"),
                             wavelength=1.0332e-10)
flat = AzimuthalIntegrator(dist=0.594, poni1=0.0375, poni2=0.0380,
                           detector=Detector(pixel1=75e-6, pixel2=75e-6, max_shape=(1000, 1000)),
                           wavelength=1.3933e-10)
for name, ai in [("pilatus1m_tilted.poni", tilted), ("generic_flat.poni", flat)]:
    ai.save(f"{OUT}/{name}")
    f2d = ai.getFit2D()
    q = ai.qArray(ai.detector.shape)
    print(name, f"centre x {f2d['centerX']:.10f} y {f2d['centerY']:.10f} tilt {f2d['tilt']:.10f}")
    for (c, r) in PIXELS:
        if r < q.shape[0] and c < q.shape[1]:
            print(f"  q({c}, {r}) = {q[r, c] / 10:.12f} 1/A")
