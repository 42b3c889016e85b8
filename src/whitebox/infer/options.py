"""How the cartoonizer runs: `InferenceOptions`, which every command line, the web page, Beam
and the Python API build from their own flags, and the constants --help shows. No TensorFlow or
OpenCV here, so that --help and usage errors answer at once.
"""
from dataclasses import dataclass
from typing import Optional

from whitebox.model import PRECISIONS, RUNTIME_PRECISIONS

# The reference's test-time preprocessing: short side capped at 720 pixels (INTER_AREA), then
# the top-left crop to multiples of 8.
MAX_SHORT_SIDE = 720
CROP_MULTIPLE = 8

# Images beyond one window of (core + 2 margins) squared pixels run in tiles. The margin exceeds
# the receptive field of generator plus filter, so tiles join without seams; multiples of 4
# give the network's two stride-2 stages the full image's pixel grid.
TILE_CORE = 768
TILE_MARGIN = 96

# Export choices: TFLite weight quantization, and the ONNX opset (also the runtimes' models).
QUANTIZE = ("none", "fp16", "dynamic")
DEFAULT_OPSET = 17

# Video frames per network call; Beam's most images per call.
VIDEO_BATCH = 2
BEAM_BATCH = 4

# `auto` takes the first installed runtime of RUNTIME_PRECISIONS (model.precision's table).
RUNTIMES = ("auto", *RUNTIME_PRECISIONS)
# The training precisions, then those only a runtime offers (int8: OpenVINO, never chosen
# unless asked for).
INFERENCE_PRECISIONS = (*PRECISIONS, *sorted({p for row in RUNTIME_PRECISIONS.values()
                                              for p in row} - set(PRECISIONS)))

# How a transparent pixel is treated (image_io.decode_bgr).
ALPHA_MODES = ("ignore", "white")


@dataclass(frozen=True)
class InferenceOptions:
    """What decides a cartoon's bytes besides the weights.

    runtime: one of RUNTIMES; precision: one of INFERENCE_PRECISIONS (both settled by
    `whitebox.model.precision.choose`). max_short_side: the cap on the short side (0: full
    resolution, in tiles of `tile_core` pixels with `tile_margin` around them). guided_filter:
    the photo-guided filter after the generator. alpha: 'ignore' or 'white'
    (image_io.decode_bgr). max_pixels: the most pixels an image header may declare (None:
    image_io's limit). xla: compile TF's network with XLA.
    """
    runtime: str = "auto"
    precision: str = "fp32"
    max_short_side: int = MAX_SHORT_SIDE
    guided_filter: bool = True
    alpha: str = "ignore"
    max_pixels: Optional[int] = None
    tile_core: int = TILE_CORE
    tile_margin: int = TILE_MARGIN
    xla: bool = False

    def problem(self):
        """Why these options cannot run, in one line naming the flag at fault, or None."""
        for flag, value, allowed in (("--runtime", self.runtime, RUNTIMES),
                                     ("--precision", self.precision, INFERENCE_PRECISIONS),
                                     ("--alpha", self.alpha, ALPHA_MODES)):
            if value not in allowed:
                return f"{flag} {value!r}: choose from {', '.join(allowed)}"
        if self.max_short_side < 0:
            return "--max-short-side must be 0 or positive"
        if 0 < self.max_short_side < CROP_MULTIPLE:
            return (f"--max-short-side {self.max_short_side} would shrink every image it "
                    f"resizes below the {CROP_MULTIPLE}x{CROP_MULTIPLE} pixels the network "
                    f"needs: use 0 or at least {CROP_MULTIPLE}")
        if self.max_pixels is not None and self.max_pixels < 1:
            return "--max-pixels must be positive"
        if self.precision == "int8" and self.runtime not in ("auto", "openvino"):
            return (f"--precision int8 runs on --runtime openvino (or auto) only, not "
                    f"{self.runtime}")
        return None
