"""Exporting the cartoonizer (generator + guided filter) to SavedModel, TFLite and ONNX; the
check against TF is export_check's. The formats are described in docs/DEPLOYMENT.md ("Export").

SavedModel signatures:
- `serving_default`: `image`, uint8 [H, W, 3] BGR of any size -> `cartoon`, uint8 [h', w', 3]
  BGR, cartoonize.py's preprocessing in TF ops (`tf_resize_crop`), run in one piece
  (cartoonize.py tiles beyond 960x960 pixels: at the default cap, panoramas over 16:9 only).
- `cartoonize_float`: `photo`, float32 [1, H, W, 3] BGR in [-1, 1], H and W multiples of 4 ->
  `output`, float32 [1, H, W, 3], the filtered network output (about [-1, 1], unclipped).
TFLite and ONNX hold the float function only, input [1, H, W, 3] with H and W free.
"""
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox.base import notice
from whitebox.base.errors import UsageError, WhiteboxError
from whitebox.base.files import atomic_folder, write_bytes_atomic
from whitebox.base.image_io import to_unit_range
from whitebox.infer.inference import cartoon_network
from whitebox.infer.options import (
    CROP_MULTIPLE,
    DEFAULT_OPSET,
    MAX_SHORT_SIDE,
    QUANTIZE,
    InferenceOptions,
)


class ExportError(WhiteboxError):
    """An export that could not be written or does not match TF (exit 1)."""


class MissingDependency(UsageError):
    """An optional package (tf2onnx, onnxruntime) is not installed (exit 2)."""


# OpenCV's INTER_AREA downscale, in TF ops. A factor that is an integer on both axes (within
# DBL_EPSILON, computed as OpenCV does) sums whole blocks of pixels; any other factor averages a
# box of width src / dst per output pixel, edge pixels weighted by the fraction they cover (a
# fraction under 1e-3 is dropped), accumulated in float32 in OpenCV's order: each row left to
# right, then the rows top to bottom. Both paths round half to even, except 2x2 blocks, which
# OpenCV rounds half up.
DBL_EPSILON = 2.220446049250313e-16
PARTIAL_MIN = 1e-3


def _area_scale(src, dst):
    """src / dst in float64 as OpenCV forms it: 1 / (dst / src)."""
    return 1.0 / (tf.cast(dst, tf.float64) / tf.cast(src, tf.float64))


def area_table(src, dst):
    """The weights of an area downscale from `src` to `dst` pixels along one axis.

    Returns (index, weight), int32 and float32 [dst, K]: output pixel i is the sum over k of
    pixel index[i, k] times weight[i, k], in order of k (unused entries have weight 0).
    """
    src_f = tf.cast(src, tf.float64)
    scale = _area_scale(src, dst)
    start = tf.cast(tf.range(dst), tf.float64) * scale
    stop = start + scale
    width = tf.minimum(scale, src_f - start)
    full_stop = tf.minimum(tf.floor(stop), src_f - 1.0)
    full_start = tf.minimum(tf.math.ceil(start), full_stop)
    left = full_start - start > PARTIAL_MIN
    right = stop - full_stop > PARTIAL_MIN
    n_left = tf.cast(left, tf.int32)
    n_full = tf.cast(full_stop - full_start, tf.int32)
    k = tf.reduce_max(n_left + n_full + tf.cast(right, tf.int32))
    # j: position among the fully covered pixels (-1 for the partial one on the left)
    j = tf.range(k)[None, :] - n_left[:, None]
    index = tf.clip_by_value(tf.cast(full_start, tf.int32)[:, None] + j, 0, src - 1)
    w_left = tf.cast((full_start - start) / width, tf.float32)[:, None]
    w_full = tf.cast(1.0 / width, tf.float32)[:, None]
    w_right = tf.cast(tf.minimum(tf.minimum(stop - full_stop, 1.0), width) / width,
                      tf.float32)[:, None]
    n_full = n_full[:, None]
    weight = tf.where(j < 0, w_left, tf.where(
        j < n_full, w_full, tf.where((j == n_full) & right[:, None], w_right, 0.0)))
    return index, weight


def _accumulate(values, index, weight, axis):
    """[H, W, C] (uint8 or float32) -> float32, the weighted sums of `area_table` along axis 0
    or 1, added in order of k."""
    weight_shape = [-1, 1, 1] if axis == 0 else [1, -1, 1]

    def term(k):
        picked = tf.cast(tf.gather(values, index[:, k], axis=axis), tf.float32)
        return picked * tf.reshape(weight[:, k], weight_shape)

    return tf.while_loop(lambda k, _: k < tf.shape(index)[1],
                         lambda k, total: (k + 1, total + term(k)), (1, term(0)))[1]


def area_resize(image, new_h, new_w):
    """cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA) for a downscale
    (new_h <= H, new_w <= W), in TF ops: uint8 [H, W, C] -> uint8 [new_h, new_w, C]."""
    shape = tf.shape(image)
    h, w, channels = shape[0], shape[1], image.shape[-1] or shape[2]

    def is_integer(scale):
        return tf.abs(scale - tf.round(scale)) < DBL_EPSILON

    def blocks():
        ky, kx = h // new_h, w // new_w
        sums = tf.reduce_sum(tf.reshape(tf.cast(image, tf.int32),
                                        [new_h, ky, new_w, kx, channels]), [1, 3])
        inverse = tf.cast(1.0 / tf.cast(ky * kx, tf.float64), tf.float32)
        return tf.cond((ky == 2) & (kx == 2), lambda: (sums + 2) // 4, lambda: tf.cast(
            tf.round(tf.cast(sums, tf.float32) * inverse), tf.int32))

    def boxes():
        x_index, x_weight = area_table(w, new_w)
        y_index, y_weight = area_table(h, new_h)
        rows = _accumulate(image, x_index, x_weight, axis=1)
        return tf.cast(tf.round(_accumulate(rows, y_index, y_weight, axis=0)), tf.int32)

    whole = is_integer(_area_scale(h, new_h)) & is_integer(_area_scale(w, new_w))
    return tf.cast(tf.clip_by_value(tf.cond(whole, blocks, boxes), 0, 255), tf.uint8)


def tf_resize_crop(image, max_short_side=MAX_SHORT_SIDE):
    """`inference.resize_crop` in TF ops, with the same bytes: uint8 [H, W, 3] BGR ->
    uint8 [h', w', 3] BGR."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    if max_short_side:
        short = tf.minimum(h, w)

        def long(side):  # int(max_short_side * side / short), in float64 as Python does
            return tf.cast(tf.cast(max_short_side, tf.float64) * tf.cast(side, tf.float64)
                           / tf.cast(short, tf.float64), tf.int32)

        def resized():
            new_h = tf.where(h > w, long(h), max_short_side)
            new_w = tf.where(h > w, max_short_side, long(w))
            return area_resize(image, new_h, new_w)

        image = tf.cond(short > max_short_side, resized, lambda: image)
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
    h = h // CROP_MULTIPLE * CROP_MULTIPLE
    w = w // CROP_MULTIPLE * CROP_MULTIPLE
    return image[:h, :w]


class ExportModule(tf.Module):
    """The generator with the two signatures of the module docstring."""

    def __init__(self, generator, max_short_side=MAX_SHORT_SIDE, use_guided_filter=True):
        super().__init__(name=None)
        self.generator = generator
        self.max_short_side = max_short_side
        self.use_guided_filter = use_guided_filter
        self._unit_table = tf.constant(to_unit_range(np.arange(256, dtype=np.uint8)))
        self.cartoonize_float = tf.function(
            self._float, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32,
                                                        name="photo")])
        self.serving_default = tf.function(
            self._bytes, input_signature=[tf.TensorSpec([None, None, 3], tf.uint8,
                                                        name="image")])

    def _float(self, photo):
        return {"output": cartoon_network(self.generator, photo, self.use_guided_filter)}

    def _bytes(self, image):
        image = tf_resize_crop(image, self.max_short_side)
        # x / 127.5 - 1 through a 256-entry table made by numpy: inside a tf.function, grappler
        # rewrites the division as a multiplication by 1/127.5, which differs in the last bit
        # and can flip a truncated output level.
        photo = tf.gather(self._unit_table, tf.cast(image, tf.int32))[None]
        out = cartoon_network(self.generator, photo, self.use_guided_filter)[0]
        cartoon = tf.cast(tf.clip_by_value((out + 1.0) * 127.5, 0.0, 255.0), tf.uint8)
        return {"cartoon": cartoon}


def save_savedmodel(module, out_dir):
    """Write the SavedModel with both signatures; returns the folder."""
    tf.saved_model.save(module, str(out_dir), signatures={
        "serving_default": module.serving_default,
        "cartoonize_float": module.cartoonize_float})
    return Path(out_dir)


def tflite_bytes(module, quantize="none"):
    """The float function as a TFLite flatbuffer, input [1, H, W, 3] with H and W free."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}")
    concrete = module.cartoonize_float.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def _holds_other_files(folder):
    """Whether `folder` holds files but no saved_model.pb (False when absent or unreadable)."""
    try:
        return any(folder.iterdir()) and not (folder / "saved_model.pb").is_file()
    except OSError:
        return False


def _is_export_file(path, fmt):
    """Whether `path` looks like a `fmt` export: "TFL3" at byte 4, or ONNX's protobuf starting
    with its ir_version field."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head[4:8] == b"TFL3" if fmt == "tflite" else head[:1] == b"\x08"


def output_problem(out, fmt):
    """Why the path string `out` cannot take a `fmt` export ('savedmodel': a folder; 'tflite',
    'onnx': a file), or None. Missing parents are created. An existing `out` is replaced only
    when it is an export of the same kind (or an empty folder), never a user's file."""
    path = Path(out)
    if fmt == "savedmodel":
        if path.exists() and not path.is_dir():
            return f"{out} exists and is not a folder"
        if _holds_other_files(path):
            return f"{out} holds files that are not a SavedModel; choose a new or empty folder"
    elif path.is_dir() or out.endswith(("/", os.sep)):
        return f"{out} is a folder; {fmt} writes one file, e.g. {path / 'cartoonizer'}.{fmt}"
    elif path.exists() and not _is_export_file(path, fmt):
        return f"{out} exists and is not a .{fmt} export; choose a new name ending in .{fmt}"
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"no permission to write in {parent}"
    return None


def import_tf2onnx():
    """The tf2onnx module, or MissingDependency saying how to install it."""
    try:
        import tf2onnx
    except ImportError as err:
        raise MissingDependency(
            "ONNX export needs tf2onnx, which is optional: pip install -r "
            f"requirements-export.txt ({err})")
    return tf2onnx


def onnx_bytes(function, opset=DEFAULT_OPSET):
    """The tf.function `function` (with its input signature) as a serialized ONNX model, by
    tf2onnx: export.py's model and the ONNX Runtime runner's."""
    model, _ = import_tf2onnx().convert.from_function(
        function, input_signature=function.input_signature, opset=opset)
    return model.SerializeToString()


def export_module(fmt, out, weights=None, options=InferenceOptions(), offline=False,
                  warn=notice):
    """The ExportModule of the generator `weights` names (as cartoonize.py finds it) with the
    cap and filter of `options`, once `out` is known to take a `fmt` export (else UsageError)
    and tf2onnx is there for ONNX (else MissingDependency); `warn` gets the notices of a
    download. Raises WeightsError."""
    from whitebox.infer import weights as weights_lib

    problem = output_problem(str(out), fmt)
    if problem:
        raise UsageError(problem)
    if fmt == "onnx":
        import_tf2onnx()
    generator, _ = weights_lib.load_generator_weights(weights, offline, warn=warn)
    return ExportModule(generator, options.max_short_side, options.guided_filter)


def write_export(module, fmt, out, quantize="none", opset=DEFAULT_OPSET):
    """Write `module` to `out` as `fmt` (tflite with `quantize`, onnx with `opset`). Raises
    MissingDependency, or ExportError saying why it could not be written."""
    try:
        if fmt == "savedmodel":  # never a partial SavedModel; through a link, its target
            with atomic_folder(os.path.realpath(out)) as staging:
                save_savedmodel(module, staging)
        else:
            write_bytes_atomic(out, tflite_bytes(module, quantize) if fmt == "tflite" else
                               onnx_bytes(module.cartoonize_float, opset))
    except (OSError, tf.errors.OpError) as err:
        reason = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err)
        raise ExportError(f"cannot write {out}: {reason.splitlines()[0]}") from None
