"""Cartoonizing images with a trained generator, as the reference's test code does.

Per image: cap the short side at 720 (INTER_AREA), crop to the top-left multiple of 8, map to
[-1, 1], run the generator, apply the photo-guided filter (r=1, eps=5e-3), map back to bytes by
truncation. Images larger than one tile are processed in overlapping tiles so that memory stays
bounded; the margin exceeds the network's receptive field, so tiles join without seams.
"""

import cv2
import numpy as np
import tensorflow as tf

from whitebox.guided_filter import guided_filter
from whitebox.image_io import to_uint8, to_unit_range

MAX_SHORT_SIDE = 720
CROP_MULTIPLE = 8
FILTER_RADIUS, FILTER_EPS = 1, 5e-3

# The generator (plus the filter) sees about 64 pixels each way (measured with an impulse on
# the official weights); a 96-pixel margin covers it with room to spare. Tiles start on
# multiples of 4 so the network's two stride-2 stages see the same pixel grid as the full image.
TILE_CORE = 768
TILE_MARGIN = 96
# Growth of peak RSS for one 960x960 window through generator and filter (440 MB measured on
# CPU, TF 2.21), and per pixel of a large image (its uint8 and float32 copies, input and
# output: about 37 bytes measured at 48 MP). --help quotes both.
TILE_MEMORY_NOTE = "about 0.5 GB"
IMAGE_BYTES_PER_PIXEL = 40


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


class Cartoonizer:
    """Generator plus optional photo-guided filter, compiled once for any image size.

    `generator` is a network.Generator with weights loaded. Call `cartoonize(image)` with an
    HxWx3 uint8 BGR image; the result is uint8 BGR of the resized and cropped size.

    `precision` ('fp32', the reference, or 'bf16' / 'fp16') is the dtype of the generator's
    convolutions; the guided filter always runs in float32. It is used as given: choose it with
    `whitebox.precision.resolve_precision`. `jit_compile` compiles the forward pass with XLA
    (once per input size).
    """

    def __init__(self, generator, use_guided_filter=True, max_short_side=MAX_SHORT_SIDE,
                 tile_core=TILE_CORE, tile_margin=TILE_MARGIN, precision="fp32",
                 jit_compile=False):
        if tile_core % 4 or tile_margin % 4:
            raise ValueError("tile core and margin must be multiples of 4")
        from whitebox.precision import DTYPES

        self.generator = generator
        self.use_guided_filter = use_guided_filter
        self.max_short_side = max_short_side
        self.tile_core, self.tile_margin = tile_core, tile_margin
        self.precision = precision
        self.compute_dtype = DTYPES[precision]
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._run = tf.function(self._forward, input_signature=[spec],
                                jit_compile=bool(jit_compile))

    def _forward(self, photo):
        """[N, H, W, 3] in [-1, 1] -> [N, H, W, 3] float32, the network's output."""
        out = self.generator(tf.cast(photo, self.compute_dtype))
        out = tf.cast(out, tf.float32)
        if self.use_guided_filter:
            out = guided_filter(photo, out, FILTER_RADIUS, FILTER_EPS)
        return out

    def run_float(self, photo):
        """HxWx3 float32 in [-1, 1] (H, W multiples of 4) -> HxWx3 float32 output.

        Whole when H*W fits one tile window (core + 2 margins, squared), else tile by tile.
        """
        h, w = photo.shape[:2]
        if self.fits_one_window(h, w):
            return self._run(photo[None])[0].numpy()
        out = np.empty_like(photo)
        for y0, y1, cy0, cy1 in tile_spans(h, self.tile_core, self.tile_margin):
            for x0, x1, cx0, cx1 in tile_spans(w, self.tile_core, self.tile_margin):
                tile = self._run(photo[None, y0:y1, x0:x1])[0].numpy()
                out[cy0:cy1, cx0:cx1] = tile[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        return out

    def fits_one_window(self, h, w):
        """Whether an HxW image runs whole (H*W within one tile window, margins included)."""
        return h * w <= (self.tile_core + 2 * self.tile_margin) ** 2

    def _prepare(self, image):
        """`resize_crop`, refusing images left without pixels (ValueError)."""
        image = resize_crop(image, self.max_short_side)
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError(f"too small: at least {CROP_MULTIPLE}x{CROP_MULTIPLE} pixels needed")
        return image

    def cartoonize(self, image):
        """HxWx3 uint8 BGR -> h'xw'x3 uint8 BGR cartoon (h', w' as `resize_crop` gives).

        Raises ValueError when the image is smaller than 8x8 pixels after resizing.
        """
        return to_uint8(self.run_float(to_unit_range(self._prepare(image))))

    def cartoonize_batch(self, images):
        """A list of HxWx3 uint8 BGR images of one size -> the list of their cartoons.

        Each output equals `cartoonize` of that image (one network call for the whole list when
        the images fit one tile window, else image by image; used for video frames).
        """
        prepared = [self._prepare(image) for image in images]
        if not self.fits_one_window(*prepared[0].shape[:2]):
            return [to_uint8(self.run_float(to_unit_range(image))) for image in prepared]
        return list(to_uint8(self._run(to_unit_range(np.stack(prepared))).numpy()))

