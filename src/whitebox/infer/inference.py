"""Cartoonizing images with a trained generator, as the reference's test code does.

Per image: cap the short side at 720 (INTER_AREA), crop to the top-left multiple of 8, map to
[-1, 1], run the generator, apply the photo-guided filter (r=1, eps=5e-3), map back to bytes by
truncation. Images beyond one window run in overlapping tiles (options.TILE_CORE), each float
only while it runs, so that memory stays bounded by the tile.
"""


import cv2
import numpy as np
import tensorflow as tf

from whitebox.base.image_io import to_uint8, to_unit_range
from whitebox.infer.options import (
    CROP_MULTIPLE,
    MAX_SHORT_SIDE,
    TILE_CORE,
    TILE_MARGIN,
)
from whitebox.model.guided_filter import guided_filter
from whitebox.model.network import run_in
from whitebox.model.precision import DTYPES

FILTER_RADIUS, FILTER_EPS = 1, 5e-3


def cartoon_network(generator, photo, use_guided_filter=True, compute_dtype=tf.float32):
    """The cartoonizer's network: [N, H, W, 3] float32 BGR in [-1, 1] (H, W multiples of 4) ->
    [N, H, W, 3] float32 BGR in about [-1, 1], unclipped.

    The generator's convolutions run in `compute_dtype` (the reference's: float32); the
    photo-guided filter (guided by `photo`) in float32, unless `use_guided_filter` is false.
    """
    out = run_in(compute_dtype, generator, photo)
    if use_guided_filter:
        out = guided_filter(photo, out, FILTER_RADIUS, FILTER_EPS)
    return out


def resize_crop(image, max_short_side=MAX_SHORT_SIDE):
    """The reference's `resize_crop`: HxWx3 uint8 -> h'xw'x3 uint8 with h', w' multiples of 8.

    If min(H, W) > max_short_side (and max_short_side > 0), resize with INTER_AREA so the short
    side is max_short_side and the long side int(max_short_side * long / short). Then keep the
    top-left h'xw' pixels. May return an empty array for images under 8 pixels.
    """
    h, w = image.shape[:2]
    if max_short_side and min(h, w) > max_short_side:
        if h > w:
            h, w = int(max_short_side * h / w), max_short_side
        else:
            h, w = max_short_side, int(max_short_side * w / h)
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    h, w = h // CROP_MULTIPLE * CROP_MULTIPLE, w // CROP_MULTIPLE * CROP_MULTIPLE
    return image[:h, :w]


def tile_spans(length, core=TILE_CORE, margin=TILE_MARGIN):
    """Split [0, length) into cores of `core` pixels, each read with `margin` around it.

    Returns (read_start, read_stop, core_start, core_stop) tuples in image coordinates. All
    starts are multiples of 4 when core and margin are.
    """
    spans = []
    for start in range(0, length, core):
        stop = min(start + core, length)
        spans.append((max(0, start - margin), min(length, stop + margin), start, stop))
    return spans


class TFRunner:
    """TF's runner (see runtimes): `cartoon_network` compiled once for any batch and size, with
    the generator's convolutions in `precision` ('fp32', 'bf16', 'fp16'); `jit_compile`: XLA
    (once per input size). `function` is the tf.function itself.
    """

    def __init__(self, generator, use_guided_filter=True, precision="fp32", jit_compile=False):
        self.generator = generator
        self.use_guided_filter = use_guided_filter
        self.compute_dtype = DTYPES[precision]
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        self.function = tf.function(self._forward, input_signature=[spec],
                                    jit_compile=bool(jit_compile))

    def _forward(self, photo):
        return cartoon_network(self.generator, photo, self.use_guided_filter,
                               self.compute_dtype)

    def __call__(self, photo):
        return self.function(photo).numpy()


class Cartoonizer:
    """Generator plus optional photo-guided filter, run for any image size.

    `generator`: a network.Generator with weights; `precision`, `jit_compile`: TFRunner's,
    used as given (`whitebox.model.precision.choose` settles them). `runner`, when given, runs
    the network instead (a runtimes runner; `generator`, `use_guided_filter`, `precision` and
    `jit_compile` are then unused); `runtime` names it. Resizing, tiling, batches and bytes
    are the same whatever runs the network.
    """

    def __init__(self, generator=None, use_guided_filter=True, max_short_side=MAX_SHORT_SIDE,
                 tile_core=TILE_CORE, tile_margin=TILE_MARGIN, precision="fp32",
                 jit_compile=False, runner=None, runtime="tf"):
        if tile_core % 4 or tile_margin % 4:
            raise ValueError("tile core and margin must be multiples of 4")
        self.generator = generator
        self.use_guided_filter = use_guided_filter
        self.max_short_side = max_short_side
        self.tile_core, self.tile_margin = tile_core, tile_margin
        self.precision, self.runtime = precision, runtime
        self.runner = runner or TFRunner(generator, use_guided_filter, precision, jit_compile)
        self._run = self.runner

    def run_float(self, photo):
        """HxWx3 float32 in [-1, 1] (H, W multiples of 4) -> HxWx3 float32 output.

        Whole when H*W fits one tile window (core + 2 margins, squared), else tile by tile.
        """
        return self._through(photo, lambda x: x, lambda y: y)

    def run_uint8(self, image):
        """HxWx3 uint8 BGR (H, W multiples of 4) -> HxWx3 uint8 BGR cartoon, byte for byte
        `to_uint8(run_float(to_unit_range(image)))`.

        Tile by tile, only the window being run is ever float: each is mapped to [-1, 1] when
        it runs and its core written as bytes straight into the one uint8 output, so memory
        beyond the input and output bytes is that of one window whatever the image size.
        """
        return self._through(image, to_unit_range, to_uint8)

    def _through(self, image, before, after):
        """`after(network(before(image)))` for HxWx3 `image`, whole when it fits one window, else
        window by window into one array of its dtype (`after` must return it); both are
        elementwise, so per window gives the values of the whole."""
        h, w = image.shape[:2]
        if self.fits_one_window(h, w):
            return after(self._run(before(image[None]))[0])
        out = np.empty_like(image)
        for y0, y1, cy0, cy1 in tile_spans(h, self.tile_core, self.tile_margin):
            for x0, x1, cx0, cx1 in tile_spans(w, self.tile_core, self.tile_margin):
                tile = self._run(before(image[None, y0:y1, x0:x1]))[0]
                out[cy0:cy1, cx0:cx1] = after(tile[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0])
        return out

    def fits_one_window(self, h, w):
        """Whether an HxW image runs whole (H*W within one tile window, margins included)."""
        return h * w <= (self.tile_core + 2 * self.tile_margin) ** 2

    def _prepare(self, image):
        """`resize_crop`; ValueError for anything but an HxWx3 uint8 image with pixels left."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR image, got shape {image.shape} "
                             f"{image.dtype}")
        image = resize_crop(image, self.max_short_side)
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"too small: at least {CROP_MULTIPLE}x{CROP_MULTIPLE} pixels needed")
        return image

    def cartoonize(self, image):
        """HxWx3 uint8 BGR -> h'xw'x3 uint8 BGR cartoon (h', w' as `resize_crop` gives).

        Raises ValueError when the image is smaller than 8x8 pixels after resizing.
        """
        return self.run_uint8(self._prepare(image))

    __call__ = cartoonize

    def cartoonize_batch(self, images):
        """HxWx3 uint8 BGR images of one size -> their `cartoonize` outputs, in one network call
        when they fit one window."""
        prepared = [self._prepare(image) for image in images]
        if not self.fits_one_window(*prepared[0].shape[:2]):
            return [self.run_uint8(image) for image in prepared]
        return list(to_uint8(self._run(to_unit_range(np.stack(prepared)))))
