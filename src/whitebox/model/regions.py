"""Per-region reductions of an image, in NumPy's own floating-point order (REFERENCE.md section 7).

The reference's superpixel code loops over labels (a mean, one ``np.histogram`` per region and
channel); these grouped array operations do every operation that can change a result in the
same order and dtype.  NumPy only: the superpixel workers import it.
"""

from __future__ import annotations

import numpy as np


def as_image(image) -> np.ndarray:
    """Return ``image`` as a C-contiguous HxWx3 float32 array (no copy when already one)."""
    arr = np.ascontiguousarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected a non-empty image, got shape {arr.shape}")
    return arr


def compact(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber non-negative integer labels to 0..n-1, keeping their order."""
    labels = np.asarray(labels).ravel()
    counts = np.bincount(labels)
    present = counts > 0
    if present.all():
        return labels.astype(np.intp, copy=False), counts.size
    new_id = np.cumsum(present) - 1
    return new_id[labels], int(present.sum())


class Regions:
    """Pixels grouped by region label 0..n-1 (each used at least once).

    ``image[mask].mean(axis=0)`` sums float32 pixels one after the other in row-major order;
    ``reduceat`` and ``bincount`` round differently, so sums run along axis 0 of (rows, regions,
    channels) blocks padded with -0.0 (which changes no sum).  A block holds one power-of-two
    size class of regions, so padding at most doubles the memory.
    """

    def __init__(self, labels: np.ndarray, n: int):
        labels = np.asarray(labels).ravel()
        self.n = n
        self.counts = counts = np.bincount(labels, minlength=n)
        if counts.size != n or not (counts > 0).all():
            raise ValueError("labels must be exactly 0..n-1, each used at least once")
        # Order regions by size class (stable, so by label inside a class) ...
        size_class = np.frexp(counts.astype(np.float64))[1]
        region_order = np.argsort(size_class, kind="stable")
        rank_of_region = np.empty(n, dtype=np.intp)
        rank_of_region[region_order] = np.arange(n)
        key_type = np.uint16 if n <= np.iinfo(np.uint16).max else np.int64
        key = rank_of_region.astype(key_type)[labels]
        # ... and pixels by region rank; a stable sort keeps row-major order inside a region.
        self.pixel_order = np.argsort(key, kind="stable")
        self.region_order = region_order
        sorted_counts = counts[region_order]
        # Start of each region's run, regions in region_order.
        self.run_start = run_start = np.zeros(n, dtype=np.intp)
        np.cumsum(sorted_counts[:-1], out=run_start[1:])
        self.first_pixel = np.empty(n, dtype=np.intp)  # first pixel of each region, row-major
        self.first_pixel[region_order] = self.pixel_order[run_start]
        self.run_of_pixel = run_of_pixel = np.repeat(np.arange(n), sorted_counts)
        self.row_in_run = np.arange(labels.size) - run_start[run_of_pixel]
        # Blocks of regions sharing a size class.
        sorted_class = size_class[region_order]
        edges = np.flatnonzero(np.diff(sorted_class)) + 1
        self.blocks = []
        bounds = np.concatenate([[0], edges, [n]])
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            p_lo = run_start[lo]
            p_hi = run_start[hi - 1] + sorted_counts[hi - 1]
            self.blocks.append((int(lo), int(hi), int(p_lo), int(p_hi), int(sorted_counts[lo:hi].max())))

    def means(self, values: np.ndarray) -> np.ndarray:
        """(n, C) means of (N, C) values equal to ``values[mask].mean(axis=0)`` for every region."""
        vals = values[self.pixel_order]
        channels = vals.shape[1]
        sums = np.empty((self.n, channels), dtype=vals.dtype)
        for lo, hi, p_lo, p_hi, rows in self.blocks:
            block = np.full((rows, hi - lo, channels), -0.0, dtype=vals.dtype)
            block[self.row_in_run[p_lo:p_hi], self.run_of_pixel[p_lo:p_hi] - lo] = vals[p_lo:p_hi]
            sums[self.region_order[lo:hi]] = block.sum(axis=0)
        # np.mean divides the float32 sum by an intp count: the division is done in float64.
        return (sums.astype(np.float64) / self.counts[:, None]).astype(values.dtype)

    def histograms(self, values: np.ndarray, bins: int) -> np.ndarray:
        """(n, C * bins) float64 ``np.histogram(values, bins)`` counts per region and channel,
        each over its own min..max as in the reference, channel-major, L1-normalised."""
        vals = values[self.pixel_order]
        channels = vals.shape[1]
        run = self.run_of_pixel
        first = np.minimum.reduceat(vals, self.run_start, axis=0)[run]
        last = np.maximum.reduceat(vals, self.run_start, axis=0)[run]
        index = histogram_bin_index(vals, first, last, bins)
        flat = (self.region_order[run][:, None] * channels + np.arange(channels)) * bins + index
        counts = np.bincount(flat.ravel(), minlength=self.n * channels * bins)
        counts = counts.reshape(self.n, channels * bins).astype(np.float64)
        return counts / counts.sum(axis=1, keepdims=True)


def histogram_bin_index(values, first, last, bins: int) -> np.ndarray:
    """The bin ``np.histogram(a, bins)`` gives each element of ``values``, whose array ``a`` has
    minimum ``first`` and maximum ``last`` (broadcast to ``values``' shape).

    The pinned NumPy's path step by step in ``values``' dtype (an empty range widened by 0.5,
    ``linspace`` edges, the scaled guess and its one-step corrections): the bins agree exactly.
    """
    dtype = values.dtype
    half = dtype.type(0.5)
    empty_range = first == last
    first = np.where(empty_range, first - half, first)
    last = np.where(empty_range, last + half, last)
    delta = last - first
    step = delta / dtype.type(bins)

    def edge(k):
        kf = k.astype(dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            regular = kf * step + first
            # linspace's fallback when the step underflows to zero.
            tiny = (kf / dtype.type(bins)) * delta + first
        inner = np.where(step == 0, tiny, regular)
        return np.where(k == bins, last, inner)

    with np.errstate(invalid="ignore", divide="ignore"):
        guess = ((values - first) / delta) * dtype.type(bins)
    index = guess.astype(np.intp)
    index[index == bins] -= 1
    index -= values < edge(index)
    index += (values >= edge(index + 1)) & (index != bins - 1)
    return index


def histograms_of_constant_regions(values: np.ndarray, counts: np.ndarray, bins: int) -> np.ndarray:
    """:meth:`Regions.histograms` of constant regions: ``values`` (n, C), ``counts`` (n,) pixels,
    all in their value's bin of the widened range value +- 0.5."""
    n, channels = values.shape
    index = histogram_bin_index(values, values, values, bins)
    hist = np.zeros((n, channels * bins), dtype=np.float64)
    hist[np.arange(n)[:, None], np.arange(channels) * bins + index] = counts[:, None]
    return hist / hist.sum(axis=1, keepdims=True)


def histograms_of_codes(codes: np.ndarray, labels: np.ndarray, n: int, bins: int, levels: int = 256):
    """:meth:`Regions.histograms` of (N, C) integer codes 0..levels-1 (LBP) taken as float64.

    Pixels are counted per code value; a code's bin depends only on its row's (min, max), so bins
    are worked out once per distinct pair.
    """
    channels = codes.shape[1]
    row = labels[:, None] * channels + np.arange(channels)
    per_code = np.bincount((row * levels + codes).ravel(), minlength=n * channels * levels)
    per_code = per_code.reshape(n * channels, levels)
    present = per_code > 0
    low = present.argmax(axis=1)
    high = levels - 1 - present[:, ::-1].argmax(axis=1)
    pairs, which = np.unique(low * levels + high, return_inverse=True)
    first = (pairs // levels).astype(np.float64)[:, None]
    last = (pairs % levels).astype(np.float64)[:, None]
    # Codes outside a pair's range never occur in its rows; clipping keeps their bins harmless.
    value = np.clip(np.arange(levels, dtype=np.float64)[None, :], first, last)
    bin_of = histogram_bin_index(value, first, last, bins)[which.ravel()]
    flat = np.arange(n * channels)[:, None] * bins + bin_of
    hist = np.bincount(flat.ravel(), weights=per_code.ravel().astype(np.float64), minlength=n * channels * bins)
    hist = hist.reshape(n, channels * bins)
    return hist / hist.sum(axis=1, keepdims=True)


