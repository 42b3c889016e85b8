"""Exporting the cartoonizer (generator + guided filter) to SavedModel, TFLite and ONNX.

SavedModel signatures:
- `serving_default`: `image`, uint8 [H, W, 3] BGR of any size (as cv2.imread gives it) ->
  `cartoon`, uint8 [h', w', 3] BGR. The preprocessing is cartoonize.py's, in TF ops: short side
  capped (`area_resize`: OpenCV's INTER_AREA computed in TF ops, the same bytes), top-left
  crop to multiples of 8, x / 127.5 - 1, network and filter, clip((y + 1) * 127.5, 0, 255)
  truncated.
  The whole image runs in one piece (cartoonize.py tiles only images beyond 960x960 pixels,
  which the default cap of 720 does not produce except for panoramas over 16:9).
- `cartoonize_float`: `photo`, float32 [1, H, W, 3] BGR in [-1, 1], H and W multiples of 4 ->
  `output`, float32 [1, H, W, 3], the filtered network output (about [-1, 1], unclipped).

TFLite and ONNX hold the float function only (the preprocessing's data-dependent loops and
branches are left to the caller there); their input is [1, H, W, 3] with H and W free.

Every export is checked against TF on one image (`check_*`), in bytes after to_uint8.
"""
import os
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox.base.errors import UsageError, WhiteboxError
from whitebox.base.files import atomic_folder, write_bytes_atomic
from whitebox.base.image_io import to_uint8, to_unit_range
from whitebox.infer.inference import Cartoonizer, cartoon_network, resize_crop
from whitebox.infer.options import (
    CROP_MULTIPLE,
    DEFAULT_OPSET,
    MAX_SHORT_SIDE,
    QUANTIZE,
    InferenceOptions,
)

# Accepted max difference against TF, in levels of the 8-bit output. Float exports are held to
# 1 level. Quantized weights change the network itself, so they are held to a PSNR instead (see
# `check_tolerance`).
MAX_LEVELS = 1
QUANTIZED_MIN_PSNR = {"fp16": 45.0, "dynamic": 30.0}


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

        def resized():
            # int(max_short_side * long / short), computed in float64 as Python does
            long_h = tf.cast(tf.cast(max_short_side, tf.float64) * tf.cast(h, tf.float64)
                             / tf.cast(short, tf.float64), tf.int32)
            long_w = tf.cast(tf.cast(max_short_side, tf.float64) * tf.cast(w, tf.float64)
                             / tf.cast(short, tf.float64), tf.int32)
            new_h = tf.where(h > w, long_h, max_short_side)
            new_w = tf.where(h > w, max_short_side, long_w)
            return area_resize(image, new_h, new_w)

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


def save_savedmodel_atomic(module, out):
    """`save_savedmodel` through `files.atomic_folder`, so that a failed or killed write never
    leaves a partial SavedModel at `out`. An existing `out` (an earlier export or an empty
    folder, as `output_problem` allows) is replaced; through a symbolic link, the folder it
    points to is."""
    with atomic_folder(os.path.realpath(out)) as staging:
        save_savedmodel(module, staging)


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


def _holds_other_files(folder):
    """Whether `folder` is a folder with files in it and no saved_model.pb (False when it is
    absent or unreadable: the access check below reports the latter)."""
    try:
        return any(folder.iterdir()) and not (folder / "saved_model.pb").is_file()
    except OSError:
        return False


def _is_export_file(path, fmt):
    """Whether the existing file `path` looks like a `fmt` export: a TFLite flatbuffer
    ("TFL3" at byte 4) or an ONNX model (a protobuf starting with its ir_version field)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head[4:8] == b"TFL3" if fmt == "tflite" else head[:1] == b"\x08"


def output_problem(out, fmt):
    """Why the path string `out` cannot take a `fmt` export ('savedmodel', a folder, or
    'tflite' / 'onnx', one file), or None. Missing parent folders are fine: they are created.
    An existing `out` is replaced only when it is an earlier export of the same kind (a
    folder empty or holding saved_model.pb; a TFLite / ONNX file, `_is_export_file`), so a user's
    photo or folder named by mistake is never overwritten."""
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
    """The tf.function `function` (with its input signature) as a serialized ONNX model,
    converted by tf2onnx (optional): export.py's model and the ONNX Runtime runner's."""
    model, _ = import_tf2onnx().convert.from_function(
        function, input_signature=function.input_signature, opset=opset)
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


def _astronaut(width, height, interpolation):
    """scikit-image's astronaut (shipped with it) as uint8 BGR [height, width, 3]."""
    import cv2
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return cv2.resize(image, (width, height), interpolation=interpolation)


def check_image(max_short_side=MAX_SHORT_SIDE, size=256):
    """The TFLite and ONNX check image: the astronaut, short side `size`, cropped as
    cartoonize.py would."""
    import cv2

    return resize_crop(_astronaut(size, size, cv2.INTER_AREA), max_short_side)


def capped_check_image(max_short_side=MAX_SHORT_SIDE):
    """The SavedModel check image: the astronaut enlarged to a 2:3 landscape whose short side
    exceeds the cap by 10 pixels (730x1100 for 720; the same without a cap), so that
    `serving_default` has to resize it. uint8 BGR [H, W, 3]."""
    import cv2

    short = (max_short_side or MAX_SHORT_SIDE) + 10
    return _astronaut(short * 3 // 2 + 5, short, cv2.INTER_LINEAR)


def check_savedmodel(folder, generator, max_short_side=MAX_SHORT_SIDE,
                     use_guided_filter=True):
    """Run the SavedModel in `folder` next to a `Cartoonizer` of `generator` on
    `capped_check_image`.

    `serving_default` gets the raw image and is compared in bytes with `Cartoonizer.cartoonize`
    (run in one piece, as the signature runs); `cartoonize_float` gets the resized and cropped
    image and is compared after to_uint8. Returns a dict: uint8_levels, float_levels, psnr
    (of the float signature), input and resized ((width, height) of the image before and after
    resize_crop). Raises ExportError when the output sizes differ.
    """
    loaded = tf.saved_model.load(str(folder))
    image = capped_check_image(max_short_side)
    resized = resize_crop(image, max_short_side)
    whole = -(-max(resized.shape[:2]) // 4) * 4
    cartoonizer = Cartoonizer(generator, use_guided_filter=use_guided_filter,
                              max_short_side=max_short_side, tile_core=whole)
    photo = to_unit_range(resized)
    reference = cartoonizer.run_float(photo)
    cartoon = loaded.signatures["serving_default"](image=tf.constant(image))["cartoon"].numpy()
    if cartoon.shape != reference.shape:
        raise ExportError(f"serving_default gave {cartoon.shape[1]}x{cartoon.shape[0]} pixels, "
                          f"cartoonize.py {reference.shape[1]}x{reference.shape[0]}")
    got = loaded.signatures["cartoonize_float"](photo=tf.constant(photo[None]))["output"]
    levels, db = compare(reference, got.numpy()[0])
    return {"uint8_levels": int(np.abs(cartoon.astype(int) - to_uint8(reference)).max()),
            "float_levels": levels, "psnr": db,
            "input": (image.shape[1], image.shape[0]),
            "resized": (resized.shape[1], resized.shape[0])}


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


def export_module(fmt, out, weights=None, options=InferenceOptions(), offline=False):
    """The ExportModule of the generator `weights` names (as cartoonize.py finds it) with the
    cap and filter of `options` (InferenceOptions), once `out` is known to take a `fmt` export
    (else UsageError) and tf2onnx to be there for ONNX (else MissingDependency). Raises
    WeightsError."""
    from whitebox.infer.runtimes import load_generator

    problem = output_problem(str(out), fmt)
    if problem:
        raise UsageError(problem)
    if fmt == "onnx":
        import_tf2onnx()
    return ExportModule(load_generator(weights, offline)[0], options.max_short_side,
                        options.guided_filter)


def write_export(module, fmt, out, quantize="none", opset=DEFAULT_OPSET):
    """Write `module` to the path `out` as `fmt` ('savedmodel', 'tflite' with `quantize`, or
    'onnx' with `opset`). Raises MissingDependency, or ExportError saying why it could not be
    written."""
    try:
        if fmt == "savedmodel":
            save_savedmodel_atomic(module, out)
        else:
            write_bytes_atomic(out, tflite_bytes(module, quantize) if fmt == "tflite" else
                               onnx_bytes(module.cartoonize_float, opset))
    except (OSError, tf.errors.OpError) as err:
        reason = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err)
        raise ExportError(f"cannot write {out}: {reason.splitlines()[0]}") from None


def verify_export(module, fmt, out, quantize="none"):
    """Run the `fmt` export at the path `out`, written from `module`, on its check image next
    to TF: a SavedModel runs `check_savedmodel` on `capped_check_image`; TFLite and ONNX run
    the float function on `check_image`.

    Returns (lines, problem): one line per signature compared, with the max difference in
    8-bit levels and the PSNR, and the ExportError of `check_tolerance` (None within it).
    Raises MissingDependency when the runtime the check needs is missing, ExportError when the
    export does not run as TF does.
    """
    label = {"savedmodel": "savedmodel cartoonize_float (float)",
             "tflite": f"tflite --quantize {quantize}", "onnx": "onnx"}[fmt]
    lines = []
    if fmt == "savedmodel":
        result = check_savedmodel(out, module.generator, module.max_short_side,
                                  module.use_guided_filter)
        size = "{}x{}".format(*result["resized"])
        lines.append("check savedmodel serving_default (uint8): max difference {} levels "
                     "against cartoonize.py on {}x{} ({} after the cap and crop)".format(
                         result["uint8_levels"], *result["input"], size))
        levels, db = result["float_levels"], result["psnr"]
        worst = max(levels, result["uint8_levels"])
    else:
        image = check_image(module.max_short_side)
        size = f"{image.shape[1]}x{image.shape[0]}"
        runner = tflite_runner if fmt == "tflite" else onnx_runner
        got = runner(Path(out).read_bytes())(to_unit_range(image)[None])
        levels, db = compare(reference_output(module, image), got)
        worst = levels
    lines.append(f"check {label}: max difference {levels} levels, PSNR {db:.1f} dB against "
                 f"TF on {size}")
    try:
        check_tolerance(fmt if quantize == "none" else quantize, worst, db)
    except ExportError as err:
        return lines, err
    return lines, None
