"""The paper's structure representation: selective-search adaptive colouring (REFERENCE.md section 7).

The reference's numbers and quirks with the pinned scikit-image and NumPy (docs/SUPERPIXEL.md);
its full sort of every pair per merge is a heap here, its per-region loops :mod:`regions`.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.segmentation import felzenszwalb

from whitebox.model.regions import (
    Regions,
    as_image,
    compact,
    histograms_of_codes,
    histograms_of_constant_regions,
)

BELOW_MINUS_ONE = ("clip", "nan")


def _lbp_codes(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 per-channel LBP codes, scikit-image's ``local_binary_pattern`` (P=8, R=1).

    Neighbours off the grid count as 0; samples use scikit-image's float64 expression
    ``(1 - dr) * ((1 - dc) * a + dc * b) + dr * ((1 - dc) * c + dc * d)``, the weights being
    ``r + offset`` minus its floor (they vary slightly with the row and column).
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
    # The 8 circular samples at radius 1, offsets rounded to 5 decimals like scikit-image.
    angle = 2 * np.pi * np.arange(8, dtype=np.double) / 8
    row_off, col_off = np.round(-np.sin(angle), 5), np.round(np.cos(angle), 5)
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
    """Each region's final id after the reference's hierarchical grouping.

    The reference sorts its pair similarities before every merge and merges the last pair (the
    most similar, among equals the last inserted): a heap keyed by (-similarity, -insertion
    number) pops the same one.  Similarities are summed in its order, ((colour + texture) + size)
    + fill, each intersection left to right; size and fill are correctly rounded integer
    quotients, in Python as in NumPy.
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
    bx = np.asarray(boxes, dtype=np.int64).reshape(n, 4)
    box = [tuple(b) for b in bx.tolist()]
    parent = list(range(n))  # a region is alive while it is its own parent
    neighbours = [set() for _ in range(n)]

    heap = []
    if n_pairs:
        a, b = pairs[:, 0], pairs[:, 1]
        overlap = _sequential_sum_of_min(hist[a], hist[b])
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
    counter = live_pairs = n_pairs
    while live_pairs > seg_num:
        _, _, i, j = heapq.heappop(heap)
        if parent[i] != i or parent[j] != j:
            continue
        new = len(size)
        si, sj = size[i], size[j]
        merged = si + sj
        hist[new] = (hist[i] * si + hist[j] * sj) / merged
        bi, bj = box[i], box[j]
        x0, y0, x1, y1 = min(bi[0], bj[0]), min(bi[1], bj[1]), max(bi[2], bj[2]), max(bi[3], bj[3])
        box.append((x0, y0, x1, y1))
        size.append(merged)
        parent.append(new)
        parent[i] = parent[j] = new
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
                fill = (max(x1, bk[2]) - min(x0, bk[0])) * (max(y1, bk[3]) - min(y0, bk[1])) - both
                s = ((c + t) + (1.0 - both / image_size)) + (1.0 - fill / image_size)
                heapq.heappush(heap, (-s, -counter, k, new))
                counter += 1
            live_pairs += len(order)

    # Every parent has a higher id than its children: resolve from the top down.
    for r in range(len(parent) - 1, -1, -1):
        parent[r] = parent[parent[r]]
    return np.array(parent[:n], dtype=np.intp)


def selective_adacolor(image, seg_num: int = 200, power: float = 1.2, below_minus_one: str = "clip") -> np.ndarray:
    """Selective-search adaptive colouring (the paper's structure representation).

    HxWx3 float32 (BGR, roughly [-1, 1]) -> HxWx3 float32, the reference's
    ``color_ss_map(image, seg_num, power)``:

    1. ``felzenszwalb(image, scale=10, sigma=0.8, min_size=100)``;
    2. every segment painted with its mean colour (the reference's 'mix', which is the mean for
       a per-segment standard deviation below 20, always so in [-1, 1]), converted to Lab with
       the BGR image taken as RGB;
    3. hierarchical grouping by colour + texture + size + fill: 25-bin Lab and 10-bin LBP(8, 1)
       histograms per channel over each region's own min..max, L1-normalised; every initial
       region's size is the pixel count of label 1, the image size H * W * 3; merged histograms
       are size-weighted averages; the most similar neighbouring pair (among equals, the last
       entered) is merged while the number of neighbouring *pairs* is above ``seg_num``;
    4. every final region painted with its mean colour, then
       ``x -> ((x + 1) / 2) ** power / max * 2 - 1``.

    ``below_minus_one``: colours below -1 in step 4, where the power is undefined, count as -1
    (``'clip'``, an all -1 image staying -1; identical to the reference wherever its result is
    finite) or make the whole image NaN (``'nan'``, the reference); docs/SUPERPIXEL.md.
    """
    if below_minus_one not in BELOW_MINUS_ONE:
        raise ValueError(f"below_minus_one must be one of {BELOW_MINUS_ONE}, got {below_minus_one!r}")
    if seg_num < 0:
        raise ValueError("seg_num must be >= 0")
    img = as_image(image)
    rows, cols, _ = img.shape
    pixels = img.reshape(-1, 3)

    seg = felzenszwalb(img, scale=10, sigma=0.8, min_size=100).ravel()
    region_size = int(np.count_nonzero(seg == 1))
    labels, n = compact(seg)
    regions = Regions(labels, n)

    lab = rgb2lab(regions.means(pixels)[labels].reshape(img.shape))
    lab_flat = lab.reshape(-1, 3)
    lab_of_region = lab_flat[regions.first_pixel]
    if np.array_equal(lab_of_region[labels], lab_flat):
        # Painted regions are constant, so their Lab values are too (checked, not assumed).
        colour_hist = histograms_of_constant_regions(lab_of_region, regions.counts, 25)
    else:
        colour_hist = regions.histograms(lab_flat, 25)
    texture_hist = histograms_of_codes(_lbp_codes(lab).reshape(-1, 3), labels, n, 10)

    label_img = labels.reshape(rows, cols)
    slices = ndi.find_objects(label_img + 1)
    boxes = np.array([(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in slices], dtype=np.int64)
    pairs = _adjacent_pairs(label_img, n)

    final = _group_regions(colour_hist, texture_hist, boxes, region_size, rows * cols * 3, pairs, seg_num)
    final, m = compact(final[labels])
    colours = _power_curve(Regions(final, m).means(pixels), power, below_minus_one)
    return colours[final].reshape(img.shape)


def _power_curve(colours: np.ndarray, power: float, below_minus_one: str) -> np.ndarray:
    """Step 4's curve in float32."""
    x = (colours + 1) / 2
    if below_minus_one == "nan":
        with np.errstate(invalid="ignore", divide="ignore"):
            x = x ** power
            return x / np.max(x) * 2 - 1
    x = np.maximum(x, np.float32(0)) ** power
    peak = np.max(x)
    return x / peak * 2 - 1 if peak > 0 else np.full_like(x, -1)

