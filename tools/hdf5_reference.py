"""Writes the HDF5/NeXus test files of crates/imaging/tests/hdf5.rs with h5py and hdf5plugin,
the field's reference writers (pip install h5py hdf5plugin). The counts follow a formula the
Rust test repeats, so the test checks every pixel of every frame.
Run: python3 tools/hdf5_reference.py (h5py 3.16.0, hdf5plugin 7.1.0 wrote the files).

- eiger_master.h5 + eiger_data_000001.h5: an Eiger 'master' file whose /entry/data/data_000001
  is an external link to the data file's /entry/data/data (u32, 3 frames of 40 × 52, one frame
  per chunk, bitshuffle-LZ4 as Eiger writes), with the detector geometry, the pixel mask and
  the count cutoff under /entry/instrument/detector;
- nexus_gzip_u16.h5: one NeXus file, /entry/data/data u16, 2 frames of 30 × 44, chunks of
  (1, 16, 16) with shuffle + gzip (partial chunks at the edges);
- lz4_u32.h5: /entry/data/data u32, 1 frame of 25 × 31, the plain LZ4 filter (32004).
"""
import h5py
import hdf5plugin
import numpy as np

OUT = "crates/imaging/tests/data"


def counts(frames, h, w):
    """Frame f, pixel (y, x): (x * 7 + y * 13 + f * 101) % 1000 + 1000 * f, and a few large values."""
    f, y, x = np.mgrid[0:frames, 0:h, 0:w]
    v = (x * 7 + y * 13 + f * 101) % 1000 + 1000 * f
    v = v.astype(np.int64)
    big = (x * 5 + y * 3) % 37 == 0
    v[big] = 70000 + x[big] * 100 + y[big]  # beyond 16 bits, for the u32 files
    return v


def eiger():
    h, w = 40, 52
    data = counts(3, h, w).astype(np.uint32)
    data[:, :, 20] = 2**32 - 1  # a module gap column, marked as Eiger marks it
    with h5py.File(f"{OUT}/eiger_data_000001.h5", "w") as f:
        f.create_dataset("entry/data/data", data=data, chunks=(1, h, w),
                         **hdf5plugin.Bitshuffle(cname="lz4"))
    with h5py.File(f"{OUT}/eiger_master.h5", "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        d = entry.create_group("data")
        d.attrs["NX_class"] = "NXdata"
        d["data_000001"] = h5py.ExternalLink("eiger_data_000001.h5", "/entry/data/data")
        det = f.create_group("entry/instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det["x_pixel_size"] = 75e-6
        det["y_pixel_size"] = 75e-6
        det["detector_distance"] = 0.4567
        det["beam_center_x"] = 25.5
        det["beam_center_y"] = 18.25
        det["count_time"] = 0.05
        spec = det.create_group("detectorSpecific")
        mask = np.zeros((h, w), dtype=np.uint32)
        mask[:, 20] = 1  # the gap
        mask[3, 4] = 8   # a hot pixel
        spec.create_dataset("pixel_mask", data=mask, **hdf5plugin.Bitshuffle(cname="lz4"))
        spec["countrate_correction_count_cutoff"] = np.uint32(120000)
        beam = f.create_group("entry/instrument/beam")
        beam["incident_wavelength"] = 0.9537


def gzip_u16():
    data = (counts(2, 30, 44) % 65000).astype(np.uint16)
    with h5py.File(f"{OUT}/nexus_gzip_u16.h5", "w") as f:
        f.create_dataset("entry/data/data", data=data, chunks=(1, 16, 16), shuffle=True,
                         compression="gzip", compression_opts=6)


def lz4_u32():
    data = counts(1, 25, 31).astype(np.uint32)
    with h5py.File(f"{OUT}/lz4_u32.h5", "w") as f:
        f.create_dataset("entry/data/data", data=data, chunks=(1, 25, 31), **hdf5plugin.LZ4())


if __name__ == "__main__":
    eiger()
    gzip_u16()
    lz4_u32()
