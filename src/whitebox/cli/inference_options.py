"""Command-line flags of the commands that run the pretrained generator (cartoonize.py,
cartoonize_beam.py, export.py, app.py, evaluate.py paper), declared once, and the
InferenceOptions back from them. Nothing heavy is imported.
"""
from whitebox.base import OPENCV_PIXEL_LIMIT, PIXEL_LIMIT_ENV
from whitebox.cli import path_argument
from whitebox.infer.options import (
    ALPHA_MODES,
    INFERENCE_PRECISIONS,
    MAX_SHORT_SIDE,
    RUNTIMES,
    TILE_CORE,
    TILE_MARGIN,
    InferenceOptions,
)

_WINDOW = TILE_CORE + 2 * TILE_MARGIN

# name: (flags, add_argument keywords). A command may give a narrower help of its own.
FLAGS = {
    "weights": (["--weights", "-w"], dict(
        metavar="PATH", type=path_argument,
        help="checkpoint folder or prefix: a TF1 checkpoint (like the authors' saved_models/) "
             "or a train.py checkpoint (default: pretrained/ when it holds one, else the "
             "authors' checkpoint, downloaded once into the cache)")),
    "offline": (["--offline"], dict(
        action="store_true", help="never download weights (also WHITEBOX_OFFLINE=1)")),
    "format": (["--format"], dict(
        choices=["same", "png", "jpg"], default="same",
        help="output format: 'same' keeps each input's (default; .pgm/.pbm become .ppm); "
             "'png' (lossless) or 'jpg' (small) replace the extension")),
    "max_pixels": (["--max-pixels"], dict(
        type=int, metavar="N",
        help=f"refuse images whose header declares more than N pixels (width x height) "
             f"before decoding (default: ${PIXEL_LIMIT_ENV}, else {OPENCV_PIXEL_LIMIT}, "
             f"OpenCV's limit)")),
    "max_short_side": (["--max-short-side"], dict(
        type=int, default=MAX_SHORT_SIDE, metavar="N",
        help=f"downscale images whose short side exceeds N pixels (default {MAX_SHORT_SIDE}, "
             f"as the reference). 0 keeps full resolution: images over one "
             f"{_WINDOW}x{_WINDOW} window run in {TILE_CORE}-pixel tiles with {TILE_MARGIN}-"
             f"pixel margins, memory bounded by one window")),
    "alpha": (["--alpha"], dict(
        choices=ALPHA_MODES, default="ignore",
        help="alpha channel: 'ignore' drops it, as the reference (default); 'white' blends "
             "over white")),
    "no_guided_filter": (["--no-guided-filter"], dict(
        action="store_true",
        help="skip the photo-guided filter after the generator (the reference always applies "
             "it)")),
    "precision": (["--precision"], dict(
        choices=INFERENCE_PRECISIONS, default="fp32",
        help="dtype of the generator's convolutions: fp32, the reference (default); bf16 "
             "(AVX512-BF16/AMX CPUs, recent GPUs) and fp16 (GPUs) differ by a few levels; "
             "int8 (openvino with nncf) more (docs/RUNTIMES.md). Without support: one line, "
             "then fp32")),
    "runtime": (["--runtime"], dict(
        choices=RUNTIMES, default="auto",
        help=f"what runs the network: 'auto' (default) takes the first installed of "
             f"{', '.join(RUNTIMES[1:])}; the first two are optional (pip install -r "
             f"requirements-runtimes.txt), convert once into the cache, and give the same "
             f"output (docs/RUNTIMES.md)")),
    "xla": (["--xla"], dict(
        action="store_true",
        help="compile the network with XLA (default off: slower on the CPUs measured)")),
}


def add_inference_flags(parser, names, helps=None):
    """Declare the flags `names` (keys of FLAGS, in that order) on `parser`; `helps`
    ({name: text}) replaces the help of a flag that means something narrower there."""
    for name in names:
        flags, keywords = FLAGS[name]
        parser.add_argument(*flags, **{**keywords, **{"help": (helps or {}).get(
            name, keywords["help"])}})


def inference_options(args):
    """The InferenceOptions of the parsed `args`; a field whose flag the command lacks keeps
    its default."""
    given = vars(args)
    fields = {name: given[name] for name in ("runtime", "precision", "max_short_side", "alpha",
                                             "max_pixels", "xla")
              if given.get(name) is not None}
    if "no_guided_filter" in given:
        fields["guided_filter"] = not given["no_guided_filter"]
    return InferenceOptions(**fields)
