"""Tests for whitebox.model.superpixel, selective_search and regions (the structure representation).

Golden tests compare with the reference's own outputs: ../shared/golden/superpixel/*.npz (made by
the project, see ../shared/golden/README.md) when that folder exists, and
tests/data/superpixel_synthetic80.npz (made the same way, by running the reference's
``simple_superpixel`` and ``color_ss_map`` on scikit-image 0.26 outside this repository), always.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from joblib import delayed
from skimage.feature import local_binary_pattern
from skimage.segmentation import felzenszwalb, slic

from whitebox.model import regions
from whitebox.model import selective_search as ss
from whitebox.model import superpixel as sp

REPO = Path(__file__).resolve().parents[1]
SHARED_GOLDEN = REPO.parent / "shared" / "golden" / "superpixel"
LOCAL_GOLDEN = REPO / "tests" / "data" / "superpixel_synthetic80.npz"
COLOUR_TOL = 1e-5


def _shared_cases():
    if not SHARED_GOLDEN.is_dir():
        reason = f"shared golden data not found at {SHARED_GOLDEN} (../shared next to the repository)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-shared-golden")]
    files = sorted(SHARED_GOLDEN.glob("*.npz"))
    if not files:
        reason = f"no .npz files in {SHARED_GOLDEN}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-shared-golden")]
    return [pytest.param(f, id=f.stem) for f in files]


def _assert_colours(actual, expected):
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=COLOUR_TOL)


def _test_image(rows=64, cols=64, seed=0):
    """Smooth shading, two flat discs and noise: continuous float32 values in about [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols)
    img = np.stack([np.sin(4 * xx + seed), np.cos(3 * yy), xx - yy], axis=-1) * 0.7
    for cy, cx, r, colour in [(0.3, 0.3, 0.15, (0.8, -0.4, 0.1)), (0.7, 0.6, 0.2, (-0.6, 0.5, -0.7))]:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = colour
    img += rng.normal(0, 0.04, img.shape)
    return np.clip(img, -1, 1).astype(np.float32)


def _pair_count(labels):
    """Number of label pairs touching through a 4-neighbour edge."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    keep = a != b
    return len({(min(p, q), max(p, q)) for p, q in zip(a[keep].tolist(), b[keep].tolist())})


def _colour_labels(image):
    """Label map of the distinct colours of a piecewise-constant image."""
    return np.unique(image.reshape(-1, 3), axis=0, return_inverse=True)[1].reshape(image.shape[:2])


# --------------------------------------------------------------------------------------------
# Golden: the reference's own outputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _shared_cases())
def test_slic_matches_reference_golden(case):
    data = np.load(case)
    _assert_colours(sp.slic_superpixel(data["input"]), data["slic"])


@pytest.mark.parametrize("case", _shared_cases())
def test_selective_matches_reference_golden(case):
    data = np.load(case)
    out = sp.selective_adacolor(data["input"], seg_num=200, power=1.2)
    _assert_colours(out, data["selective_power1p2"])


@pytest.fixture(scope="module")
def local_golden():
    return np.load(LOCAL_GOLDEN)


def test_slic_matches_reference_local(local_golden):
    _assert_colours(sp.slic_superpixel(local_golden["input"]), local_golden["slic"])


@pytest.mark.parametrize("seg_num", [60, 20])
def test_selective_matches_reference_local(local_golden, seg_num):
    out = sp.selective_adacolor(local_golden["input"], seg_num=seg_num, power=1.2)
    _assert_colours(out, local_golden[f"selective_seg{seg_num}"])


def _with_dark_patch(image):
    """The local golden input with a patch below -1 (how its NaN reference output was made)."""
    dark = image.copy()
    dark[30:50, 5:40] = -1.25
    return dark


def test_below_minus_one_nan_mode_is_the_reference(local_golden):
    expected = local_golden["selective_below_seg60"]
    assert np.isnan(expected).all()  # what the reference does
    out = sp.selective_adacolor(_with_dark_patch(local_golden["input"]), seg_num=60, below_minus_one="nan")
    assert out.dtype == np.float32
    assert np.isnan(out).all()


def test_below_minus_one_default_is_finite(local_golden):
    dark = _with_dark_patch(local_golden["input"])
    out = sp.selective_adacolor(dark, seg_num=60)
    assert np.isfinite(out).all()
    assert out.min() == -1.0 and out.max() == 1.0
    # The dark patch lies in regions whose mean is below -1: they come out as exactly -1.
    assert (out[35:45, 10:35] == -1.0).all()
    # Colours elsewhere follow the reference's curve, with the (finite) maximum.
    labels = _colour_labels(out)
    means = np.array([dark[labels == k].mean(axis=0) for k in range(labels.max() + 1)], dtype=np.float32)
    curve = np.maximum((means + 1) / 2, 0) ** np.float32(1.2)
    expected = curve / curve.max() * 2 - 1
    np.testing.assert_allclose(out, expected[labels], rtol=0, atol=COLOUR_TOL)


def test_below_minus_one_all_dark_image_is_minus_one():
    dark = np.full((32, 32, 3), -1.5, dtype=np.float32)
    assert (sp.selective_adacolor(dark) == -1).all()
    assert np.isnan(sp.selective_adacolor(dark, below_minus_one="nan")).all()


def test_invalid_arguments_are_rejected():
    img = _test_image(16, 16)
    with pytest.raises(ValueError):
        sp.selective_adacolor(img, below_minus_one="ignore")
    with pytest.raises(ValueError):
        sp.selective_adacolor(img[..., :2])
    with pytest.raises(ValueError):
        sp.superpixel_batch(img[None], method="watershed")
    with pytest.raises(ValueError):
        sp.superpixel_batch(img)  # not a batch


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


def test_slic_paints_each_segment_with_its_mean():
    img = _test_image(48, 80, seed=1)
    out = sp.slic_superpixel(img)
    assert out.shape == img.shape and out.dtype == np.float32
    labels = slic(img, n_segments=200, sigma=1, compactness=10, convert2lab=True, start_label=0)
    assert labels.max() > 20
    for k in np.unique(labels):
        region = out[labels == k]
        assert (region == region[0]).all(), "colour not constant inside a SLIC segment"
        np.testing.assert_allclose(region[0], img[labels == k].mean(axis=0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("seg_num", [15, 6])
def test_selective_region_structure(seg_num):
    img = _test_image(64, 64, seed=2)
    out = sp.selective_adacolor(img, seg_num=seg_num)
    assert out.shape == img.shape and out.dtype == np.float32
    segments = felzenszwalb(img, scale=10, sigma=0.8, min_size=100)
    initial_pairs = _pair_count(segments)
    assert initial_pairs > seg_num, "test image too simple to need merging"
    # Final regions are unions of Felzenszwalb segments: constant colour inside each segment.
    for k in np.unique(segments):
        region = out[segments == k]
        assert (region == region[0]).all()
    # Merging stops as soon as the number of neighbouring pairs is <= seg_num.
    labels = _colour_labels(out)
    assert _pair_count(labels) <= seg_num
    assert labels.max() + 1 < segments.max() + 1
    # Every final region is painted with the power curve of its mean colour.
    means = np.array([img[labels == k].mean(axis=0) for k in range(labels.max() + 1)], dtype=np.float32)
    curve = ((means + 1) / 2) ** np.float32(1.2)
    np.testing.assert_allclose(out, (curve / curve.max() * 2 - 1)[labels], rtol=0, atol=COLOUR_TOL)


def test_selective_without_merges_keeps_segments():
    img = _test_image(64, 64, seed=3)
    segments = felzenszwalb(img, scale=10, sigma=0.8, min_size=100)
    out = sp.selective_adacolor(img, seg_num=10_000, power=1.0)
    assert _colour_labels(out).max() == segments.max()


def test_selective_seg_num_zero_merges_everything():
    out = sp.selective_adacolor(_test_image(40, 40, seed=4), seg_num=0)
    assert (out == out[0, 0]).all()  # a single region
    assert out.max() == 1.0


def test_ties_merge_the_pair_inserted_last():
    # Four one-pixel regions in a 2x2 grid with identical statistics: all four neighbour pairs
    # (0,1), (0,2), (1,3), (2,3) are equally similar.  The reference merges the last one.
    hist_c = np.full((4, 75), 1 / 75)
    hist_t = np.full((4, 30), 1 / 30)
    boxes = np.array([(0, 0, 1, 1), (1, 0, 2, 1), (0, 1, 1, 2), (1, 1, 2, 2)])
    pairs = np.array([(0, 1), (0, 2), (1, 3), (2, 3)])
    final = ss._group_regions(hist_c, hist_t, boxes, 1, 12, pairs, seg_num=3)
    assert final.tolist() == [0, 1, 4, 4]


def test_determinism_and_input_types():
    img = _test_image(40, 56, seed=5)
    a = sp.selective_adacolor(img, seg_num=20)
    b = sp.selective_adacolor(img.astype(np.float64), seg_num=20)
    c = sp.selective_adacolor(np.asfortranarray(img), seg_num=20)
    assert a.dtype == b.dtype == c.dtype == np.float32
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(sp.slic_superpixel(img), sp.slic_superpixel(img.copy()))


# --------------------------------------------------------------------------------------------
# Building blocks that must agree exactly with NumPy / scikit-image
# --------------------------------------------------------------------------------------------


def test_region_means_equal_numpy_mean():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 40, 5000)
    labels[:40] = np.arange(40)
    values = rng.normal(0, 1, (5000, 3)).astype(np.float32)
    means = regions.Regions(labels, 40).means(values)
    expected = np.stack([values[labels == k].mean(axis=0) for k in range(40)])
    assert means.dtype == np.float32
    assert np.array_equal(means, expected)  # bit for bit, not just close


def test_region_histograms_equal_numpy_histogram():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 30, 3000)
    labels[:30] = np.arange(30)
    values = rng.normal(0, 10, (3000, 3)).astype(np.float32)
    values[labels == 3] = 7.5  # a constant region: numpy widens its range by 0.5
    hist = regions.Regions(labels, 30).histograms(values, 25)
    for k in range(30):
        counts = np.concatenate([np.histogram(values[labels == k, c], 25)[0] for c in range(3)])
        assert np.array_equal(hist[k], counts / counts.sum())


def test_histogram_bin_index_matches_numpy():
    rng = np.random.default_rng(8)
    for trial in range(300):
        dtype = np.float32 if trial % 2 else np.float64
        a = (rng.normal(0, 10.0 ** rng.uniform(-3, 3), rng.integers(1, 40)) + rng.normal(0, 50)).astype(dtype)
        if trial % 3 == 0:
            a = rng.integers(0, 256, a.size).astype(dtype)
        bins = [10, 25][trial % 2]
        first, last = np.full_like(a, a.min()), np.full_like(a, a.max())
        index = regions.histogram_bin_index(a, first, last, bins)
        assert np.array_equal(np.bincount(index, minlength=bins), np.histogram(a, bins)[0])


def test_code_histograms_equal_numpy_histogram():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 20, 2000)
    labels[:20] = np.arange(20)
    codes = rng.choice([0, 3, 17, 128, 200, 255], size=(2000, 3)).astype(np.uint8)
    codes[labels == 5, 1] = 255
    hist = regions.histograms_of_codes(codes, labels, 20, 10)
    for k in range(20):
        counts = np.concatenate([np.histogram(codes[labels == k, c].astype(np.float64), 10)[0] for c in range(3)])
        assert np.array_equal(hist[k], counts / counts.sum())


@pytest.mark.filterwarnings("ignore:Applying `local_binary_pattern`")
@pytest.mark.parametrize("kind", ["noise", "piecewise"])
def test_lbp_codes_equal_scikit_image(kind):
    rng = np.random.default_rng(10)
    if kind == "noise":
        img = rng.normal(0, 30, (37, 53, 3))
    else:
        blocks = rng.integers(0, 12, (6, 8))
        img = rng.normal(0, 40, (12, 3)).astype(np.float32)[np.kron(blocks, np.ones((7, 7), int))]
    codes = ss._lbp_codes(img)
    expected = np.stack([local_binary_pattern(img[:, :, c], 8, 1) for c in range(3)], axis=-1)
    assert codes.dtype == np.uint8
    assert np.array_equal(codes.astype(np.float64), expected)


# --------------------------------------------------------------------------------------------
# Batches and the worker pool
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_batch():
    return np.stack([_test_image(48, 48, seed=s) for s in range(4)])


@pytest.fixture(scope="module", autouse=True)
def _stop_pool_afterwards():
    yield
    sp.shutdown_pool()


@pytest.mark.parametrize("method", ["slic", "selective"])
def test_batch_same_output_serial_and_pool(small_batch, method):
    serial = sp.superpixel_batch(small_batch, method, n_jobs=1, seg_num=30)
    pooled = sp.superpixel_batch(small_batch, method, n_jobs=2, seg_num=30)
    assert serial.shape == small_batch.shape and serial.dtype == pooled.dtype == np.float32
    assert np.array_equal(serial, pooled)
    one = sp.slic_superpixel if method == "slic" else sp.selective_adacolor
    assert np.array_equal(serial[2], one(small_batch[2], seg_num=30))


def _children_of(pid):
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                children.add(int(entry))
    return children


def _worker_pids(workers):
    return set(sp._in_pool(workers, [delayed(os.getpid)() for _ in range(8)]))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to list child processes")
def test_pool_is_reused_across_calls(small_batch):
    sp.shutdown_pool()
    before = _children_of(os.getpid())
    sp.superpixel_batch(small_batch, "slic", n_jobs=2)
    children = _children_of(os.getpid())
    workers = _worker_pids(2)
    assert workers <= children - before and len(children - before) >= 2, "no new worker processes"
    out1 = sp.superpixel_batch(small_batch, "selective", n_jobs=2, seg_num=30)
    out2 = sp.superpixel_batch(small_batch, "selective", n_jobs=2, seg_num=30)
    assert np.array_equal(out1, out2)
    assert _worker_pids(2) <= children - before
    assert _children_of(os.getpid()) == children, "a later call started new processes"


def test_batch_survives_a_worker_dying_during_the_call(small_batch, monkeypatch):
    serial = sp.superpixel_batch(small_batch, "slic", n_jobs=1, seg_num=30)
    in_pool, calls = sp._in_pool, []

    def pool_losing_a_worker(workers, tasks):
        calls.append(len(tasks))
        if len(calls) == 1:  # the first call also runs a task that ends its worker process
            tasks = tasks + [delayed(os._exit)(1)]
        return in_pool(workers, tasks)

    monkeypatch.setattr(sp, "_in_pool", pool_losing_a_worker)
    assert np.array_equal(sp.superpixel_batch(small_batch, "slic", n_jobs=2, seg_num=30), serial)
    assert calls == [4, 4]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_computes_without_the_inherited_pool(small_batch):
    serial = sp.superpixel_batch(small_batch, "slic", n_jobs=1, seg_num=30)
    sp.superpixel_batch(small_batch, "slic", n_jobs=2, seg_num=30)
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 when the pooled call gives the serial result
        signal.alarm(60)  # the inherited executor would hang: fail instead of blocking the run
        code = 1
        try:
            out = sp.superpixel_batch(small_batch, "slic", n_jobs=2, seg_num=30)
            code = int(not np.array_equal(out, serial))
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert np.array_equal(sp.superpixel_batch(small_batch, "slic", n_jobs=2, seg_num=30), serial)


def test_batch_accepts_float64_and_empty(small_batch):
    out = sp.superpixel_batch(small_batch[:2].astype(np.float64), "slic", n_jobs=1)
    assert out.dtype == np.float32
    assert np.array_equal(out, sp.superpixel_batch(small_batch[:2], "slic", n_jobs=1))
    empty = sp.superpixel_batch(np.zeros((0, 8, 8, 3), np.float32), "selective")
    assert empty.shape == (0, 8, 8, 3) and empty.dtype == np.float32
