#!/usr/bin/env python3
"""Cartoonize photos with the White-box Cartoonization generator (see --help)."""
import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "src"))

DESCRIPTION = """\
Cartoonize photos with the authors' pretrained generator (or your own checkpoint).

The defaults reproduce the reference's test code: images are read as BGR with OpenCV, the short
side is capped at 720 pixels (INTER_AREA), the image is cropped to the top-left multiple of 8,
the generator runs, a photo-guided filter (r=1, eps=5e-3) is applied, and the result is
truncated to 8 bits and written under the same file name in the output folder.

Bad inputs (corrupt, truncated, empty, unreadable, non-image, smaller than 8x8, declaring more
pixels than --max-pixels) are reported on one line each and skipped; inputs are never
overwritten; outputs are written atomically, and temporary files that a killed run left in the
output folders are removed. Ctrl-C stops after the outputs being written, with the summary so
far. The exit code is 0 only if every input succeeded (existing outputs skipped without
--overwrite do not count as failures), 1 if any input failed, 2 for a usage or weights error,
130 when interrupted.
"""

EPILOG = """\
weights: --weights takes a TF1 checkpoint folder laid out like the authors' saved_models/
(checkpoint + model-33999.index + model-33999.data-00000-of-00001), a checkpoint prefix, or a
checkpoint written by train.py. Without --weights, pretrained/ is used when it holds a
checkpoint; otherwise the authors' checkpoint is downloaded once from their repository (pinned
commit, verified by git blob id) into the user cache ($WHITEBOX_HOME, default
~/.cache/whitebox-cartoon) and reused after that. The authors publish it under CC BY-NC-SA 4.0
(non-commercial use). See pretrained/README.md for the manual route.

videos: files ending in .mp4, .mov, .avi, .mkv or .webm (PyAV, whose wheel ships FFmpeg) are
streamed frame by frame: every frame gets the image treatment above, the result is re-encoded
at the same frame rate in the same container (H.264, VP9 for webm, MPEG-4 for avi) at the
resized and cropped size, and the audio track is copied. --format does not apply to them.

grey-only formats: with --format same, a .pgm or .pbm input is written as .ppm (those formats
cannot hold the colour cartoon), and one line says so.

example: python cartoonize.py --input photos/ --output cartoons/ --format png
example: python cartoonize.py --input clip.mp4 --output cartoons/ --precision bf16
"""


def parse_args(argv=None):
    """(args, InferenceOptions) from the command line."""
    from whitebox.base import OPENCV_PIXEL_LIMIT, PIXEL_LIMIT_ENV
    from whitebox.cli import OneLineParser, output_problem, path_argument
    from whitebox.infer.options import (
        INFERENCE_PRECISIONS,
        MAX_SHORT_SIDE,
        RUNTIMES,
        TILE_CORE,
        TILE_MARGIN,
        VIDEO_BATCH,
        InferenceOptions,
    )

    window = TILE_CORE + 2 * TILE_MARGIN
    p = OneLineParser(
        prog="cartoonize.py", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH", type=path_argument,
                   help="image files and/or folders of images")
    p.add_argument("--output", "-o", required=True, metavar="DIR", type=path_argument,
                   help="output folder (created if missing)")
    p.add_argument("--weights", "-w", metavar="PATH", type=path_argument,
                   help="checkpoint folder or prefix (default: pretrained/)")
    p.add_argument("--format", choices=["same", "png", "jpg"], default="same",
                   help="output format: 'same' keeps each input's name and format (default); "
                        "'png' is lossless and 'jpg' small, both under the input's name with "
                        "the new extension")
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help=f"refuse images whose header declares more than N pixels (width x "
                        f"height), before decoding them (default: ${PIXEL_LIMIT_ENV}, else "
                        f"{OPENCV_PIXEL_LIMIT}, OpenCV's own limit); sets {PIXEL_LIMIT_ENV} for "
                        f"OpenCV too")
    p.add_argument("--recursive", "-r", action="store_true",
                   help="descend into sub-folders and mirror the tree under --output")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (default: skip them)")
    p.add_argument("--max-short-side", type=int, default=MAX_SHORT_SIDE, metavar="N",
                   help=f"downscale images whose short side exceeds N pixels (default "
                        f"{MAX_SHORT_SIDE}, as the reference). 0 keeps full resolution: images "
                        f"larger than one {window}x{window} window run in {TILE_CORE}-pixel "
                        f"tiles with {TILE_MARGIN}-pixel overlaps, so the network's working "
                        f"memory stays that of one window whatever the image size (memory "
                        f"figures in README.md, 'Full resolution')")
    p.add_argument("--alpha", choices=["ignore", "white"], default="ignore",
                   help="images with an alpha channel: 'ignore' drops it and keeps the colour "
                        "under transparent pixels, as OpenCV and the reference do (default); "
                        "'white' blends them over a white background")
    p.add_argument("--no-guided-filter", action="store_true",
                   help="skip the photo-guided filter after the generator (the reference "
                        "always applies it)")
    p.add_argument("--precision", choices=INFERENCE_PRECISIONS, default="fp32",
                   help="dtype of the generator's convolutions: fp32 reproduces the reference "
                        "(default); bf16 (CPUs with AVX512-BF16/AMX, recent GPUs) and fp16 "
                        "(GPUs) are faster and differ from fp32 by a few levels at most (see "
                        "docs/DEPLOYMENT.md); int8 (--runtime openvino or auto, with nncf) "
                        "quantizes the generator once per weights file and differs more "
                        "(README.md, 'Runtimes'). The guided filter stays float32. Where the "
                        "hardware or the runtime lacks support, one line says so and fp32 is "
                        "used")
    p.add_argument("--runtime", choices=RUNTIMES, default="auto",
                   help=f"what runs the network: 'auto' (default) takes the first installed of "
                        f"{', '.join(RUNTIMES[1:])}; openvino and onnxruntime are optional "
                        f"(pip install -r requirements-runtimes.txt), convert the network once "
                        f"per weights file into the weights cache, and give the same output "
                        f"(README.md, 'Runtimes'). One line at start names the runtime and "
                        f"precision used")
    p.add_argument("--xla", action="store_true",
                   help="compile the network with XLA (default off: slower on the CPUs "
                        "measured, see docs/DEPLOYMENT.md)")
    p.add_argument("--video-batch", type=int, default=VIDEO_BATCH, metavar="N",
                   help=f"video frames per network call (default {VIDEO_BATCH}); memory "
                        f"grows with N")
    p.add_argument("--offline", action="store_true",
                   help="never download weights (also WHITEBOX_OFFLINE=1)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar, and on stderr only the failed inputs, fallbacks from "
                        "the --runtime or --precision asked for, and the summary")
    args = p.parse_args(argv)
    options = InferenceOptions(
        runtime=args.runtime, precision=args.precision, max_short_side=args.max_short_side,
        guided_filter=not args.no_guided_filter, alpha=args.alpha, max_pixels=args.max_pixels,
        xla=args.xla)
    for problem in (options.problem(), args.video_batch < 1 and "--video-batch must be at least 1",
                    output_problem(args.output)):
        if problem:
            p.error(problem)
    return args, options


def main(argv=None):
    """Returns the exit code: 0 all done, 1 some input failed, 2 usage or weights error, 130
    Ctrl-C (after the summary so far)."""
    from whitebox.cli import run_command, set_pixel_limit

    set_pixel_limit(sys.argv[1:] if argv is None else argv)
    args, options = parse_args(argv)
    return run_command(lambda: cartoonize(args, options), "cartoonize.py")


def cartoonize(args, options):
    from whitebox.base.quiet_tf import import_tensorflow

    import_tensorflow()
    from whitebox.infer.batch import plan_jobs, run_plan, say_above_bar, video_runner
    from whitebox.infer.runtimes import load_cartoonizer

    cartoonizer = load_cartoonizer(args.weights, options, args.offline, say_above_bar,
                                   not args.quiet)
    if not args.quiet:
        say_above_bar(f"runtime {cartoonizer.runtime}, precision {cartoonizer.precision}")
    plan = plan_jobs(args.input, args.output, args.format, args.recursive, args.overwrite)
    summary = run_plan(plan, cartoonizer, say_above_bar, not args.quiet, options.alpha,
                       video_runner(cartoonizer, args.video_batch))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
