"""Exporting the cartoonizer (generator + guided filter) to SavedModel, TFLite and ONNX.

SavedModel signatures:
- `serving_default`: `image`, uint8 [H, W, 3] BGR of any size (as cv2.imread gives it) ->
  `cartoon`, uint8 [h', w', 3] BGR. The preprocessing is cartoonize.py's, in TF ops: short side
  capped (area resize, rounded to bytes), top-left crop to multiples of 8, x / 127.5 - 1,
  network and filter, clip((y + 1) * 127.5, 0, 255) truncated. TF's ResizeArea equals OpenCV's
  INTER_AREA for the scales we tried except on a few pixels (about 0.3% at non-integer scales,
  by 1 level before the network); images that need no resizing give identical bytes.
  The whole image runs in one piece (cartoonize.py tiles only images beyond 960x960 pixels,
  which the default cap of 720 does not produce except for panoramas over 16:9).
- `cartoonize_float`: `photo`, float32 [1, H, W, 3] BGR in [-1, 1], H and W multiples of 4 ->
  `output`, float32 [1, H, W, 3], the filtered network output (about [-1, 1], unclipped).

TFLite and ONNX hold the float function only (ResizeArea has no TFLite builtin or ONNX
equivalent); their input is [1, H, W, 3] with H and W free.

Every export is checked against TF on one image (`check_*`), in bytes after to_uint8.
"""
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox.guided_filter import guided_filter
from whitebox.inference import (
    CROP_MULTIPLE,
    FILTER_EPS,
    FILTER_RADIUS,
    MAX_SHORT_SIDE,
    resize_crop,
    to_uint8,
    to_unit_range,
)

QUANTIZE = ("none", "fp16", "dynamic")
# Accepted max difference against TF, in levels of the 8-bit output. Float exports are held to
# 1 level (issue 7). Quantized weights change the network itself, so they are held to a PSNR
# instead (see `check_tolerance`).
MAX_LEVELS = 1
QUANTIZED_MIN_PSNR = {"fp16": 45.0, "dynamic": 30.0}
DEFAULT_OPSET = 17


class ExportError(Exception):
    """An export that failed or did not match TF; str() is the reason."""


class MissingDependency(ExportError):
    """An optional package (tf2onnx, onnxruntime) is not installed."""


def tf_resize_crop(image, max_short_side=MAX_SHORT_SIDE):
    """`inference.resize_crop` in TF ops: uint8 [H, W, 3] -> uint8 [h', w', 3]."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    if max_short_side:
        short = tf.minimum(h, w)

        def resized():
            # int(max_short_side * long / short), computed in float64 as Python does
            long_h = tf.cast(tf.cast(max_short_side, tf.float64) * tf.cast(h, tf.float64)
                             / tf.cast(short, tf.float64), tf.int32)
            long_w = tf.cast(tf.cast(max_short_side, tf.float64) * tf.cast(w, tf.float64)
                             / tf.cast(short, tf.float64), tf.int32)
            new_h = tf.where(h > w, long_h, max_short_side)
            new_w = tf.where(h > w, max_short_side, long_w)
            area = tf.raw_ops.ResizeArea(images=image[None], size=tf.stack([new_h, new_w]),
                                         align_corners=False)[0]
            return tf.cast(tf.clip_by_value(tf.round(area), 0, 255), tf.uint8)

        image = tf.cond(short > max_short_side, resized, lambda: image)
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
    h = h // CROP_MULTIPLE * CROP_MULTIPLE
    w = w // CROP_MULTIPLE * CROP_MULTIPLE
    return image[:h, :w]


class ExportModule(tf.Module):
    """The generator with the two serving functions (see the module docstring)."""

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

    def _network(self, photo):
        out = self.generator(photo)
        if self.use_guided_filter:
            out = guided_filter(photo, out, FILTER_RADIUS, FILTER_EPS)
        return out

    def _float(self, photo):
        return {"output": self._network(photo)}

    def _bytes(self, image):
        image = tf_resize_crop(image, self.max_short_side)
        # x / 127.5 - 1 through a 256-entry table made by numpy: inside a tf.function, grappler
        # rewrites the division as a multiplication by 1/127.5, which differs in the last bit
        # and can flip a truncated output level.
        photo = tf.gather(self._unit_table, tf.cast(image, tf.int32))[None]
        out = self._network(photo)[0]
        cartoon = tf.cast(tf.clip_by_value((out + 1.0) * 127.5, 0.0, 255.0), tf.uint8)
        return {"cartoon": cartoon}


def save_savedmodel(module, out_dir):
    """Write the SavedModel with both signatures; returns the folder."""
    tf.saved_model.save(module, str(out_dir), signatures={
        "serving_default": module.serving_default,
        "cartoonize_float": module.cartoonize_float})
    return Path(out_dir)


def tflite_bytes(module, quantize="none"):
    """The float function as a TFLite flatbuffer with input [1, H, W, 3], H and W dynamic."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {QUANTIZE}")
    concrete = module.cartoonize_float.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def write_atomic_bytes(path, data):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def onnx_bytes(module, opset=DEFAULT_OPSET):
    """The float function as ONNX through tf2onnx (optional dependency)."""
    try:
        import tf2onnx
    except ImportError as err:
        raise MissingDependency(
            "ONNX export needs tf2onnx, which is optional: pip install -r "
            f"requirements-export.txt ({err})")
    spec = (tf.TensorSpec([1, None, None, 3], tf.float32, name="photo"),)
    model, _ = tf2onnx.convert.from_function(
        module.cartoonize_float, input_signature=spec, opset=opset)
    return model.SerializeToString()


# ------------------------------------------------------------------------------------------
# Runners for the checks and the benchmark: each takes float32 [1, H, W, 3] in [-1, 1].
# ------------------------------------------------------------------------------------------

def tflite_runner(model_bytes, threads=None):
    """A function running the TFLite model on [1, H, W, 3] float32, resizing as needed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=model_bytes, num_threads=threads)
    index = interpreter.get_input_details()[0]["index"]
    state = {"shape": None}

    def run(photo):
        if state["shape"] != photo.shape:
            interpreter.resize_tensor_input(index, list(photo.shape))
            interpreter.allocate_tensors()
            state["shape"] = photo.shape
        interpreter.set_tensor(index, photo)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    return run


def onnx_runner(model_bytes):
    try:
        import onnxruntime
    except ImportError as err:
        raise MissingDependency(
            f"checking the ONNX model needs onnxruntime: pip install -r "
            f"requirements-export.txt ({err})")
    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda photo: session.run(None, {name: photo})[0]


def check_image(max_short_side=MAX_SHORT_SIDE, size=256):
    """The check image: scikit-image's astronaut (shipped with it) as BGR, short side `size`,
    cropped as cartoonize.py would."""
    import cv2
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return resize_crop(image, max_short_side)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def compare(reference_float, exported_float):
    """(max difference in levels, PSNR in dB) between two float outputs, after to_uint8."""
    a, b = to_uint8(reference_float), to_uint8(exported_float)
    return int(np.abs(a.astype(int) - b).max()), psnr(a, b)


def check_tolerance(kind, levels, db):
    """Raise ExportError when an export differs from TF by more than allowed."""
    if kind in QUANTIZED_MIN_PSNR:
        if db < QUANTIZED_MIN_PSNR[kind]:
            raise ExportError(f"{kind} model differs from TF: PSNR {db:.1f} dB < "
                              f"{QUANTIZED_MIN_PSNR[kind]} dB")
    elif levels > MAX_LEVELS:
        raise ExportError(f"exported model differs from TF by {levels} levels "
                          f"(more than {MAX_LEVELS})")


def reference_output(module, image):
    """TF's float output on uint8 BGR `image` (already resized and cropped)."""
    return module.cartoonize_float(tf.constant(to_unit_range(image)[None]))["output"].numpy()
