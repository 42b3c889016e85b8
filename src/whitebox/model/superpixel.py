"""Structure representation: the superpixel step of the training loop (REFERENCE.md section 7).

Two variants turn a generator output (HxWx3 float32, BGR, roughly in [-1, 1]) into a piecewise
constant image:

* :func:`slic_superpixel` -- the default of the reference training code: SLIC superpixels, each
  painted with its mean colour.
* :func:`selective_adacolor` -- the paper's variant: Felzenszwalb over-segmentation, then
  selective-search style hierarchical grouping down to ``seg_num`` neighbour pairs, each final
  region painted with its mean colour, then a power curve.

Both reproduce the reference's numbers with the pinned scikit-image and NumPy (see
docs/SUPERPIXEL.md), including its quirks.  The reference's slow parts (a Python loop over labels
for every mean colour, one ``np.histogram`` call per region and channel, a full-image
``find_boundaries`` per region, a full sort of every pair per merge) are replaced here by grouped
array operations and a heap, arranged so that every floating-point operation that can influence
the result is done in the same order and precision.

:func:`superpixel_batch` runs either variant over a batch, in joblib's reusable process pool,
started once and reused by later calls (the training step calls it through ``tf.numpy_function``).

This module deliberately imports no TensorFlow: worker processes only need NumPy, SciPy and
scikit-image.
"""

from __future__ import annotations

import heapq
import os

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from joblib.externals.loky import BrokenProcessPool, get_reusable_executor
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.segmentation import felzenszwalb, slic

from whitebox.model import SUPERPIXEL_METHODS

__all__ = [
    "slic_superpixel",
    "selective_adacolor",
    "superpixel_batch",
    "shutdown_pool",
]

# Parameters of the reference (train_code/utils.py).
SLIC_SEGMENTS = 200
SLIC_SIGMA = 1
SLIC_COMPACTNESS = 10
FELZENSZWALB_SCALE = 10
FELZENSZWALB_SIGMA = 0.8
FELZENSZWALB_MIN_SIZE = 100
COLOUR_BINS = 25
TEXTURE_BINS = 10

_BELOW_MINUS_ONE = ("clip", "nan")


# ---------------------------------------------------------------------------------------------
# Input checking
# ---------------------------------------------------------------------------------------------


def _as_image(image) -> np.ndarray:
    """Return ``image`` as a C-contiguous HxWx3 float32 array (no copy when already one)."""
    arr = np.ascontiguousarray(image, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected a non-empty image, got shape {arr.shape}")
    return arr


def _compact(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber non-negative integer labels to 0..n-1, keeping their order."""
    labels = np.asarray(labels).ravel()
    counts = np.bincount(labels)
    present = counts > 0
    if present.all():
        return labels.astype(np.intp, copy=False), counts.size
    new_id = np.cumsum(present) - 1
    return new_id[labels], int(present.sum())


# ---------------------------------------------------------------------------------------------
# Per-region reductions in the reference's floating-point order
# ---------------------------------------------------------------------------------------------


class _Regions:
    """Pixels grouped by region label, for reductions that match NumPy's own arithmetic.

    The reference paints every region with ``image[mask].mean(axis=0)``.  On an (n, 3) float32
    array NumPy accumulates that sum in float32, one pixel after the other in row-major order, and
    then divides.  ``np.add.reduceat`` and ``np.bincount`` round differently, so sums here are
    taken along the first axis of zero-padded (rows, regions, channels) blocks, which NumPy
    reduces in the same sequential order.  Regions are put in blocks by the power of two of
    their pixel count, so padding never more than doubles the memory.  The padding value is
    -0.0, the one float that leaves every sum unchanged.
    """

    def __init__(self, labels: np.ndarray, n: int):
        labels = np.asarray(labels).ravel()
        self.n = n
        counts = np.bincount(labels, minlength=n)
        if counts.size != n or not (counts > 0).all():
            raise ValueError("labels must be exactly 0..n-1, each used at least once")
        self.counts = counts
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
        run_start = np.zeros(n, dtype=np.intp)
        np.cumsum(sorted_counts[:-1], out=run_start[1:])
        self.run_start = run_start  # start of each region's run, regions in region_order
        self.first_pixel = np.empty(n, dtype=np.intp)  # first pixel of each region, row-major
        self.first_pixel[region_order] = self.pixel_order[run_start]
        run_of_pixel = np.repeat(np.arange(n), sorted_counts)
        self.run_of_pixel = run_of_pixel
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

    def sorted_values(self, values: np.ndarray) -> np.ndarray:
        """(N, C) values in region-run order."""
        return values[self.pixel_order]

    def sequential_sums(self, values: np.ndarray) -> np.ndarray:
        """(n, C) sums of (N, C) values per region, accumulated like ``arr.sum(axis=0)``."""
        vals = self.sorted_values(values)
        channels = vals.shape[1]
        sums = np.empty((self.n, channels), dtype=vals.dtype)
        for lo, hi, p_lo, p_hi, rows in self.blocks:
            block = np.full((rows, hi - lo, channels), -0.0, dtype=vals.dtype)
            block[self.row_in_run[p_lo:p_hi], self.run_of_pixel[p_lo:p_hi] - lo] = vals[p_lo:p_hi]
            sums[self.region_order[lo:hi]] = block.sum(axis=0)
        return sums

    def means(self, values: np.ndarray) -> np.ndarray:
        """(n, C) per-region means equal to ``values[mask].mean(axis=0)`` for every region."""
        sums = self.sequential_sums(values)
        # np.mean divides the float32 sum by an intp count: the division is done in float64.
        out = sums.astype(np.float64) / self.counts[:, None]
        return out.astype(values.dtype)

    def minmax(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-region minimum and maximum (n, C), and the values in region-run order."""
        vals = self.sorted_values(values)
        lo = np.empty((self.n, vals.shape[1]), dtype=vals.dtype)
        hi = np.empty_like(lo)
        lo[self.region_order] = np.minimum.reduceat(vals, self.run_start, axis=0)
        hi[self.region_order] = np.maximum.reduceat(vals, self.run_start, axis=0)
        return lo, hi, vals

    def histograms(self, values: np.ndarray, bins: int) -> np.ndarray:
        """Per-region, per-channel ``np.histogram(values, bins)`` counts, L1-normalised.

        Every region and channel gets its own range (its minimum to its maximum), as in the
        reference; the result is (n, C * bins) float64 with channel-major bins.
        """
        lo, hi, vals = self.minmax(values)
        channels = vals.shape[1]
        region_of_sorted = self.region_order[self.run_of_pixel]
        first = lo[region_of_sorted]
        last = hi[region_of_sorted]
        index = _histogram_bin_index(vals, first, last, bins)
        flat = (region_of_sorted[:, None] * channels + np.arange(channels)) * bins + index
        counts = np.bincount(flat.ravel(), minlength=self.n * channels * bins)
        counts = counts.reshape(self.n, channels * bins).astype(np.float64)
        return counts / counts.sum(axis=1, keepdims=True)


def _histogram_bin_index(values, first, last, bins: int) -> np.ndarray:
    """Bin index that ``np.histogram(a, bins)`` gives each element of ``a``, element-wise.

    ``first`` and ``last`` are the minimum and maximum of the array each element belongs to
    (broadcast to the shape of ``values``).  This follows the pinned NumPy's equal-width path step by
    step in the dtype of ``values`` -- the range widened by 0.5 when it is empty, the edges from
    ``linspace`` (``k * step + first``, last edge set to ``last``), the scaled-index guess and
    its one-step corrections -- so the bins agree exactly, not just to rounding.
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


def _histograms_of_constant_regions(values: np.ndarray, counts: np.ndarray, bins: int) -> np.ndarray:
    """:meth:`_Regions.histograms` for regions whose every pixel has the same value.

    ``values`` is (n, C), one value per region and channel, ``counts`` the pixel counts.  A
    constant array's histogram puts all its elements in the bin of its value in the widened
    range value +- 0.5, so only n * C bin indices are needed.
    """
    n, channels = values.shape
    index = _histogram_bin_index(values, values, values, bins)
    hist = np.zeros((n, channels * bins), dtype=np.float64)
    hist[np.arange(n)[:, None], np.arange(channels) * bins + index] = counts[:, None]
    return hist / hist.sum(axis=1, keepdims=True)


def _histograms_of_codes(codes: np.ndarray, labels: np.ndarray, n: int, bins: int, levels: int = 256):
    """:meth:`_Regions.histograms` for integer codes 0..levels-1 (the LBP image), as float64 data.

    The pixels of each region and channel are first counted per code value; the bin of every
    code then depends only on the region's (min, max) pair, so bins are worked out once per
    distinct pair present.
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
    bin_of = _histogram_bin_index(value, first, last, bins)[which.ravel()]
    flat = np.arange(n * channels)[:, None] * bins + bin_of
    hist = np.bincount(flat.ravel(), weights=per_code.ravel().astype(np.float64), minlength=n * channels * bins)
    hist = hist.reshape(n, channels * bins)
    return hist / hist.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Local binary patterns (P=8, R=1, 'default'), as skimage.feature.local_binary_pattern
# ---------------------------------------------------------------------------------------------


def _lbp_sample_points(points: int = 8, radius: float = 1.0):
    """Row and column offsets of the circular samples, rounded to 5 decimals like scikit-image."""
    angle = 2 * np.pi * np.arange(points, dtype=np.double) / points
    return np.round(-radius * np.sin(angle), 5), np.round(radius * np.cos(angle), 5)


def _lbp_codes(image: np.ndarray) -> np.ndarray:
    """Per-channel LBP codes of an (H, W, C) image, equal to scikit-image's for P=8, R=1.

    Returns (H, W, C) uint8 codes (scikit-image returns the same integers as float64).
    Neighbours off the grid count as 0.  Each sample is bilinearly interpolated with the float64
    expression scikit-image evaluates per pixel -- ``(1 - dr) * ((1 - dc) * a + dc * b) + dr *
    ((1 - dc) * c + dc * d)``, the weights taken from ``r + offset`` minus its floor, so they
    vary slightly with the row and column -- and a bit is set when the sample is >= the centre.
    The horizontal step is shared by the two diagonal samples with the same column offset.
    Work is done channels-first so that every inner loop runs along a whole image row.
    """
    img = np.ascontiguousarray(np.moveaxis(np.asarray(image, dtype=np.float64), -1, 0))
    channels, rows, cols = img.shape
    padded = np.zeros((channels, rows + 2, cols + 2), dtype=np.float64)
    padded[:, 1:-1, 1:-1] = img
    row_pos = np.arange(rows, dtype=np.float64)
    col_pos = np.arange(cols, dtype=np.float64)
    code = np.zeros(img.shape, dtype=np.uint8)
    bit_set = np.empty(img.shape, dtype=bool)
    shifted = np.empty(img.shape, dtype=np.uint8)
    sample = np.empty(img.shape, dtype=np.float64)
    scratch = np.empty(img.shape, dtype=np.float64)
    horizontal = {}
    row_off, col_off = _lbp_sample_points()
    for bit, (dr_off, dc_off) in enumerate(zip(row_off.tolist(), col_off.tolist())):
        if dr_off == np.floor(dr_off) and dc_off == np.floor(dc_off):
            # Integer offset: the weights are exactly 1 and 0, the sample is the pixel itself.
            orow, ocol = int(dr_off), int(dc_off)
            value = padded[:, 1 + orow:1 + orow + rows, 1 + ocol:1 + ocol + cols]
        else:
            if dc_off not in horizontal:
                c = col_pos + dc_off
                c_lo = np.floor(c)
                o_lo, o_hi = int(c_lo[0]), int(np.ceil(c[0]))
                wc = c - c_lo
                # Interpolated along the row for every padded row (the off-grid rows stay 0).
                across = np.multiply(1 - wc, padded[:, :, 1 + o_lo:1 + o_lo + cols])
                across += wc * padded[:, :, 1 + o_hi:1 + o_hi + cols]
                horizontal[dc_off] = across
            across = horizontal[dc_off]
            r = row_pos + dr_off
            r_lo = np.floor(r)
            o_lo, o_hi = int(r_lo[0]), int(np.ceil(r[0]))
            wr = (r - r_lo)[:, None]
            np.multiply(1 - wr, across[:, 1 + o_lo:1 + o_lo + rows], out=sample)
            np.multiply(wr, across[:, 1 + o_hi:1 + o_hi + rows], out=scratch)
            value = np.add(sample, scratch, out=sample)
        np.greater_equal(value, img, out=bit_set)
        np.left_shift(bit_set.view(np.uint8), np.uint8(bit), out=shifted)
        code |= shifted
    return np.moveaxis(code, 0, -1)


# ---------------------------------------------------------------------------------------------
# Region adjacency and hierarchical grouping
# ---------------------------------------------------------------------------------------------


def _adjacent_pairs(labels_2d: np.ndarray, n: int) -> np.ndarray:
    """Sorted (i < j) pairs of labels that touch through a 4-neighbour pixel edge.

    This is the set the reference builds with ``find_boundaries(mode='outer')`` per region.
    """
    lab = labels_2d.astype(np.int64, copy=False)
    a = np.concatenate([lab[:, :-1].ravel(), lab[:-1, :].ravel()])
    b = np.concatenate([lab[:, 1:].ravel(), lab[1:, :].ravel()])
    differ = a != b
    a, b = a[differ], b[differ]
    key = np.unique(np.minimum(a, b) * n + np.maximum(a, b))
    return np.stack([key // n, key % n], axis=1)


def _sequential_sum_of_min(h_a: np.ndarray, h_b: np.ndarray) -> np.ndarray:
    """Row-wise ``sum(min(x, y) for x, y in zip(a, b))`` accumulated left to right."""
    return np.cumsum(np.minimum(h_a, h_b), axis=-1)[..., -1]


def _group_regions(colour_hist, texture_hist, boxes, region_size, image_size, pairs, seg_num):
    """Merge regions like the reference's hierarchical grouping; return each region's final id.

    The reference keeps a dict of neighbour-pair similarities, sorts it fully before every merge
    and merges the last pair of the sort: the most similar, and among equals the one inserted
    last.  Here a heap keyed by (-similarity, -insertion number) pops the same pair; entries of
    merged regions are skipped when they surface.  The loop runs while the number of neighbour
    pairs is above ``seg_num``, as in the reference.

    ``region_size`` is the size every initial region is given (the reference uses the pixel
    count of label 1 for all of them); ``image_size`` is H * W * 3.  Similarities are summed in
    the reference's order, ((colour + texture) + size) + fill, each histogram intersection left
    to right; sizes and boxes are integers, and the size and fill terms are correctly rounded
    quotients of integers in both Python and NumPy, so plain floats give the same values.
    """
    n = colour_hist.shape[0]
    n_pairs = len(pairs)
    capacity = n + max(n_pairs, 1)
    # Both histograms of a region side by side, the shorter one padded with -0.0: x + -0.0 == x
    # and min(-0.0, -0.0) == -0.0, so one cumulative sum gives both intersections unchanged.
    width = max(colour_hist.shape[1], texture_hist.shape[1])
    hist = np.full((capacity, 2, width), -0.0)
    hist[:n, 0, :colour_hist.shape[1]] = colour_hist
    hist[:n, 1, :texture_hist.shape[1]] = texture_hist
    size = [int(region_size)] * n
    box = [tuple(b) for b in np.asarray(boxes, dtype=np.int64).reshape(n, 4).tolist()]
    parent = list(range(n))
    alive = [True] * n
    neighbours = [set() for _ in range(n)]

    heap = []
    if n_pairs:
        a, b = pairs[:, 0], pairs[:, 1]
        overlap = _sequential_sum_of_min(hist[a], hist[b])
        bx = np.asarray(boxes, dtype=np.int64).reshape(n, 4)
        both = np.full(n_pairs, 2 * int(region_size), dtype=np.int64)
        bbox = (np.maximum(bx[a, 2], bx[b, 2]) - np.minimum(bx[a, 0], bx[b, 0])) * (
            np.maximum(bx[a, 3], bx[b, 3]) - np.minimum(bx[a, 1], bx[b, 1])
        )
        sim = ((overlap[:, 0] + overlap[:, 1]) + (1.0 - both / image_size)) + (
            1.0 - (bbox - both) / image_size
        )
        a_list, b_list = a.tolist(), b.tolist()
        for i, j in zip(a_list, b_list):
            neighbours[i].add(j)
            neighbours[j].add(i)
        heap = list(zip((-sim).tolist(), range(0, -n_pairs, -1), a_list, b_list))
        heapq.heapify(heap)
    counter = n_pairs

    live_pairs = n_pairs
    while live_pairs > seg_num:
        _, _, i, j = heapq.heappop(heap)
        if not (alive[i] and alive[j]):
            continue
        new = len(size)
        si, sj = size[i], size[j]
        merged = si + sj
        hist[new] = (hist[i] * si + hist[j] * sj) / merged
        bi, bj = box[i], box[j]
        x0 = bi[0] if bi[0] < bj[0] else bj[0]
        y0 = bi[1] if bi[1] < bj[1] else bj[1]
        x1 = bi[2] if bi[2] > bj[2] else bj[2]
        y1 = bi[3] if bi[3] > bj[3] else bj[3]
        box.append((x0, y0, x1, y1))
        size.append(merged)
        parent.append(new)
        alive.append(True)
        parent[i] = parent[j] = new
        alive[i] = alive[j] = False
        around = (neighbours[i] | neighbours[j]) - {i, j}
        live_pairs -= len(neighbours[i]) + len(neighbours[j]) - 1
        neighbours[i] = neighbours[j] = set()
        for k in around:
            nk = neighbours[k]
            nk.discard(i)
            nk.discard(j)
            nk.add(new)
        neighbours.append(around)
        if around:
            order = sorted(around)
            overlap = _sequential_sum_of_min(hist[new], hist[order]).tolist()
            for k, (c, t) in zip(order, overlap):
                bk = box[k]
                both = merged + size[k]
                width_k = (x1 if x1 > bk[2] else bk[2]) - (x0 if x0 < bk[0] else bk[0])
                height_k = (y1 if y1 > bk[3] else bk[3]) - (y0 if y0 < bk[1] else bk[1])
                s = ((c + t) + (1.0 - both / image_size)) + (1.0 - (width_k * height_k - both) / image_size)
                heapq.heappush(heap, (-s, -counter, k, new))
                counter += 1
            live_pairs += len(order)

    # Resolve every initial region to the region it ended in.
    final = np.empty(n, dtype=np.intp)
    for r in range(n):
        top = r
        while parent[top] != top:
            top = parent[top]
        final[r] = top
    return final


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def slic_superpixel(image, seg_num: int = SLIC_SEGMENTS) -> np.ndarray:
    """SLIC superpixels painted with their mean colour (the reference's default variant).

    ``image``: HxWx3 float32 (BGR, roughly [-1, 1], not clipped). Returns an HxWx3 float32 array.

    Segmentation: ``skimage.segmentation.slic(image, n_segments=seg_num, sigma=1,
    compactness=10, convert2lab=True)``; ``start_label=0`` numbers the segments from 0 as
    the reference's scikit-image did (the numbering does not change the segments).  Colouring:
    every segment gets the mean of its pixels, which is what ``label2rgb(kind='mix')`` did there
    (any kind other than 'overlay' meant 'avg', with no background label), computed without
    scikit-image's per-label loop but with the same float32 arithmetic.
    """
    img = _as_image(image)
    labels = slic(
        img,
        n_segments=seg_num,
        sigma=SLIC_SIGMA,
        compactness=SLIC_COMPACTNESS,
        convert2lab=True,
        start_label=0,
    )
    compact, n = _compact(labels)
    colours = _Regions(compact, n).means(img.reshape(-1, 3))
    return colours[compact].reshape(img.shape)


def selective_adacolor(
    image,
    seg_num: int = 200,
    power: float = 1.2,
    below_minus_one: str = "clip",
) -> np.ndarray:
    """Selective-search adaptive colouring (the paper's structure representation).

    ``image``: HxWx3 float32 (BGR, roughly [-1, 1]). Returns an HxWx3 float32 array equal to the
    reference's ``color_ss_map(image, seg_num, power)``:

    1. ``felzenszwalb(image, scale=10, sigma=0.8, min_size=100)``;
    2. every segment painted with its mean colour (the reference's 'mix' colouring; on data
       whose per-segment standard deviation is below 20 -- always so in [-1, 1] -- that is the
       mean), converted to Lab with the BGR image taken as RGB;
    3. hierarchical grouping with similarity colour + texture + size + fill: 25-bin Lab and
       10-bin LBP(8, 1) histograms per channel over each region's own min..max, L1-normalised;
       every initial region's size is the pixel count of label 1 and the image size is
       H * W * 3; merged histograms are size-weighted averages; the most similar neighbouring
       pair is merged (among equals, the pair that entered the table last) while the number of
       neighbouring *pairs* is above ``seg_num``;
    4. every final region painted with its mean colour, then
       ``x -> ((x + 1) / 2) ** power / max * 2 - 1``.

    ``below_minus_one`` decides what happens to colours below -1 in step 4, where
    ``(x + 1) / 2`` is negative and the power is undefined:

    * ``'clip'`` (default): ``(x + 1) / 2`` is raised to 0 before the power, i.e. such colours
      count as -1; if the whole image is then 0 it is returned as -1 everywhere instead of
      0 / 0.  Whenever the reference's result is finite (no final colour below -1, some colour
      above -1) the output is identical to it; the segmentation is never changed.
    * ``'nan'``: the reference's behaviour: one region below -1 makes its pixels NaN, the
      maximum NaN, and so the whole image NaN (likewise an image that is -1 everywhere).
    """
    if below_minus_one not in _BELOW_MINUS_ONE:
        raise ValueError(f"below_minus_one must be one of {_BELOW_MINUS_ONE}, got {below_minus_one!r}")
    if seg_num < 0:
        raise ValueError("seg_num must be >= 0")
    img = _as_image(image)
    rows, cols, _ = img.shape
    pixels = img.reshape(-1, 3)

    seg = felzenszwalb(img, scale=FELZENSZWALB_SCALE, sigma=FELZENSZWALB_SIGMA, min_size=FELZENSZWALB_MIN_SIZE)
    seg = seg.ravel()
    region_size = int(np.count_nonzero(seg == 1))
    compact, n = _compact(seg)
    regions = _Regions(compact, n)

    painted = regions.means(pixels)[compact].reshape(img.shape)
    lab = rgb2lab(painted)
    lab_flat = lab.reshape(-1, 3)
    lab_of_region = lab_flat[regions.first_pixel]
    if np.array_equal(lab_of_region[compact], lab_flat):
        # Painted regions are constant, so their Lab values are too (checked, not assumed).
        colour_hist = _histograms_of_constant_regions(lab_of_region, regions.counts, COLOUR_BINS)
    else:
        colour_hist = regions.histograms(lab_flat, COLOUR_BINS)
    codes = _lbp_codes(lab)
    texture_hist = _histograms_of_codes(codes.reshape(-1, 3), compact, n, TEXTURE_BINS)

    label_img = compact.reshape(rows, cols)
    slices = ndi.find_objects(label_img + 1)
    boxes = np.array([(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices], dtype=np.int64)
    pairs = _adjacent_pairs(label_img, n)

    final = _group_regions(colour_hist, texture_hist, boxes, region_size, rows * cols * 3, pairs, seg_num)
    final_compact, m = _compact(final[compact])
    colours = _Regions(final_compact, m).means(pixels)
    colours = _power_curve(colours, power, below_minus_one)
    return colours[final_compact].reshape(img.shape)


def _power_curve(colours: np.ndarray, power: float, below_minus_one: str) -> np.ndarray:
    """``((x + 1) / 2) ** power / max * 2 - 1`` in float32, as the reference (see above)."""
    x = (colours + 1) / 2
    if below_minus_one == "nan":
        with np.errstate(invalid="ignore", divide="ignore"):
            x = x ** power
            x = x / np.max(x)
        return x * 2 - 1
    x = np.maximum(x, np.float32(0))
    x = x ** power
    peak = np.max(x)
    if not peak > 0:
        return np.full_like(x, -1)
    x = x / peak
    return x * 2 - 1


# ---------------------------------------------------------------------------------------------
# Batches and the worker pool
# ---------------------------------------------------------------------------------------------

_pool_owner = None  # the process that last used the pool; a forked child cannot use it


def _one_image(image, method, options):
    if method == "slic":
        return slic_superpixel(image, **options)
    return selective_adacolor(image, **options)


def _in_pool(workers: int, tasks) -> list:
    """Results of joblib ``delayed`` tasks, in order, from ``workers`` processes.

    joblib's loky pool keeps its processes for the next call (resized when ``workers`` changes,
    idle ones leaving after joblib's idle timeout); one that was shut down or broken (a worker
    killed) is replaced by a fresh one.  Each worker runs one thread (the work is single-threaded
    and the workers share the cores); every task is queued at once, one image each, sent as it
    is rather than memory-mapped.
    """
    global _pool_owner
    _pool_owner = os.getpid()
    with parallel_config(backend="loky", inner_max_num_threads=1):
        return Parallel(n_jobs=workers, batch_size=1, pre_dispatch="all", max_nbytes=None)(tasks)


def shutdown_pool() -> None:
    """Stop the worker processes of :func:`superpixel_batch` (a later call starts new ones)."""
    if _pool_owner == os.getpid():
        get_reusable_executor(reuse=True).shutdown(wait=True)


def superpixel_batch(
    batch,
    method: str = "slic",
    n_jobs: int | None = None,
    *,
    seg_num: int = 200,
    power: float = 1.2,
    below_minus_one: str = "clip",
) -> np.ndarray:
    """Apply :func:`slic_superpixel` or :func:`selective_adacolor` to every image of a batch.

    ``batch``: NxHxWx3 float32; returns NxHxWx3 float32 (safe to call from
    ``tf.numpy_function``).  ``method`` is ``'slic'`` (the reference's default) or
    ``'selective'`` (the paper's, with ``power`` and ``below_minus_one``); ``seg_num`` is the
    SLIC segment count or the selective-search pair count.

    ``n_jobs``: worker processes.  ``None`` or -1: one per usable CPU; -2: all but one, and so
    on; 1: run serially in this process.  The workers are started on the first call and kept
    for later ones (unlike the reference, which started one process per image every step);
    changing ``n_jobs`` resizes the pool, :func:`shutdown_pool` stops it.  A batch of one image,
    or any batch in a process forked after the pool was started, is processed in this process.
    The output does not depend on ``n_jobs``.
    """
    if method not in SUPERPIXEL_METHODS:
        raise ValueError(f"method must be one of {SUPERPIXEL_METHODS}, got {method!r}")
    arr = np.ascontiguousarray(batch, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected an NxHxWx3 batch, got shape {arr.shape}")
    options = {"seg_num": seg_num}
    if method == "selective":
        options.update(power=power, below_minus_one=below_minus_one)
        if below_minus_one not in _BELOW_MINUS_ONE:
            raise ValueError(f"below_minus_one must be one of {_BELOW_MINUS_ONE}, got {below_minus_one!r}")
    workers = effective_n_jobs(-1 if n_jobs is None else n_jobs)  # joblib's rules, loky's CPUs
    inherited_pool = _pool_owner not in (None, os.getpid())
    if workers == 1 or len(arr) <= 1 or inherited_pool:
        results = [_one_image(image, method, options) for image in arr]
    else:
        tasks = [delayed(_one_image)(image, method, options) for image in arr]
        try:
            results = _in_pool(workers, tasks)
        except BrokenProcessPool:  # a worker died during the call: the pool is replaced; once more
            results = _in_pool(workers, tasks)
    out = np.empty_like(arr)
    for k, result in enumerate(results):
        out[k] = result
    return out
