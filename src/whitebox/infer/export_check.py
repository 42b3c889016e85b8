"""Checking an export against TF on scikit-image's astronaut, in 8-bit levels: float exports
within MAX_LEVELS, quantized ones (their weights change the network) above a PSNR."""
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox.base.image_io import to_uint8, to_unit_range
from whitebox.infer.export import ExportError, MissingDependency
from whitebox.infer.inference import Cartoonizer, resize_crop
from whitebox.infer.options import MAX_SHORT_SIDE

MAX_LEVELS = 1
QUANTIZED_MIN_PSNR = {"fp16": 45.0, "dynamic": 30.0}


def tflite_runner(model_bytes, threads=None):
    """A runner of the TFLite model: float32 [1, H, W, 3] in [-1, 1] -> its output."""
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
    """A runner of the ONNX model on ONNX Runtime's CPU provider."""
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
    """scikit-image's astronaut as uint8 BGR [height, width, 3]."""
    import cv2
    from skimage import data

    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return cv2.resize(image, (width, height), interpolation=interpolation)


def check_image(max_short_side=MAX_SHORT_SIDE, size=256):
    """The TFLite and ONNX check image: the astronaut at `size` squared, as cartoonize.py
    crops it."""
    import cv2

    return resize_crop(_astronaut(size, size, cv2.INTER_AREA), max_short_side)


def capped_check_image(max_short_side=MAX_SHORT_SIDE):
    """The SavedModel check image, uint8 BGR: the astronaut enlarged to a 2:3 landscape whose
    short side exceeds the cap by 10 pixels (730x1100 for 720 or no cap), so that
    `serving_default` has to resize it."""
    import cv2

    short = (max_short_side or MAX_SHORT_SIDE) + 10
    return _astronaut(short * 3 // 2 + 5, short, cv2.INTER_LINEAR)


def check_savedmodel(folder, generator, max_short_side=MAX_SHORT_SIDE,
                     use_guided_filter=True):
    """Run the SavedModel in `folder` next to a `Cartoonizer` of `generator` (in one piece, as
    the signature runs) on `capped_check_image`: `serving_default` on the raw image, compared
    in bytes; `cartoonize_float` on the resized and cropped one. Returns a dict: uint8_levels,
    float_levels, psnr (float signature), input and resized ((width, height) before and after
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
    """PSNR in dB of two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def compare(reference_float, exported_float):
    """(max difference in levels, PSNR in dB) between two float outputs, after to_uint8."""
    a, b = to_uint8(reference_float), to_uint8(exported_float)
    return int(np.abs(a.astype(int) - b).max()), psnr(a, b)


def tolerance_problem(kind, levels, db):
    """The ExportError for an export that differs from TF by more than allowed, else None."""
    if kind in QUANTIZED_MIN_PSNR:
        if db < QUANTIZED_MIN_PSNR[kind]:
            return ExportError(f"{kind} model differs from TF: PSNR {db:.1f} dB < "
                               f"{QUANTIZED_MIN_PSNR[kind]} dB")
    elif levels > MAX_LEVELS:
        return ExportError(f"exported model differs from TF by {levels} levels "
                           f"(more than {MAX_LEVELS})")
    return None


def reference_output(module, image):
    """TF's float output on uint8 BGR `image` (already resized and cropped)."""
    return module.cartoonize_float(tf.constant(to_unit_range(image)[None]))["output"].numpy()


def verify_export(module, fmt, out, quantize="none"):
    """Run the `fmt` export at `out`, written from `module`, next to TF: `check_savedmodel`,
    or the float function on `check_image`. Returns (one line per signature compared: max
    difference in levels and PSNR, `tolerance_problem`). Raises MissingDependency when the
    check's runtime is missing, ExportError when the export does not run as TF does.
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
    return lines, tolerance_problem(fmt if quantize == "none" else quantize, worst, db)
