"""Cartoonize photos with the White-box Cartoonization generator (see --help)."""
import argparse
import sys

DESCRIPTION = """\
Cartoonize photos with the authors' pretrained generator (or your own checkpoint).

The defaults reproduce the reference's test code: BGR via OpenCV, short side capped at 720
(INTER_AREA), top-left crop to multiples of 8, generator, photo-guided filter (r=1,
eps=5e-3), truncation to 8 bits, written under the same file name in the output folder.
Videos (.mp4 .mov .avi .mkv .webm) get the same treatment frame by frame, audio copied, in
their own container. A grey-only .pgm/.pbm input is written as .ppm under --format same.

Bad inputs (corrupt, truncated, empty, non-image, under 8x8, over --max-pixels) are reported
on one line each and skipped; inputs are never overwritten; outputs are written atomically.
Ctrl-C stops after the outputs being written, with the summary so far. Exit code: 0 every
input done (existing outputs skipped without --overwrite included), 1 some input failed,
2 usage or weights error, 130 interrupted. More: docs/ROBUSTNESS.md, docs/DEPLOYMENT.md.
"""

EPILOG = """\
weights: --weights takes a TF1 checkpoint folder (like the authors' saved_models/), a prefix,
or a train.py checkpoint. Without it, pretrained/ when it holds one, else the authors'
checkpoint, downloaded once (verified) into $WHITEBOX_HOME (default ~/.cache/whitebox-cartoon);
CC BY-NC-SA 4.0, non-commercial. Manual route: pretrained/README.md.

example: python cartoonize.py --input photos/ --output cartoons/ --format png
example: python cartoonize.py --input clip.mp4 --output cartoons/ --precision bf16
"""


def parse_args(argv=None):
    """(args, InferenceOptions) from the command line."""
    from whitebox.cli import OneLineParser, output_problem, path_argument
    from whitebox.cli.inference_options import (
        FLAGS,
        add_inference_flags,
        inference_options,
    )
    from whitebox.infer.options import VIDEO_BATCH

    p = OneLineParser(
        prog="cartoonize.py", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", "-i", nargs="+", required=True, metavar="PATH", type=path_argument,
                   help="image files and/or folders of images")
    p.add_argument("--output", "-o", required=True, metavar="DIR", type=path_argument,
                   help="output folder (created if missing)")
    add_inference_flags(p, ["weights", "format", "max_pixels"],
                        {"weights": "checkpoint folder or prefix (default: see weights below)",
                         "format": FLAGS["format"][1]["help"] + "; videos keep theirs"})
    p.add_argument("--recursive", "-r", action="store_true",
                   help="descend into sub-folders and mirror the tree under --output")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (default: skip them)")
    add_inference_flags(p, ["max_short_side", "alpha", "no_guided_filter", "precision",
                            "runtime", "xla"])
    p.add_argument("--video-batch", type=int, default=VIDEO_BATCH, metavar="N",
                   help=f"video frames per network call (default {VIDEO_BATCH}); memory "
                        f"grows with N")
    add_inference_flags(p, ["offline"])
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar; on stderr only failures, notices (fallbacks, the "
                        "weights' licence) and the summary")
    args = p.parse_args(argv)
    options = inference_options(args)
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
    from whitebox.cli import say
    from whitebox.infer.batch import plan_jobs, run_plan, video_runner
    from whitebox.infer.loader import load_cartoonizer

    cartoonizer = load_cartoonizer(args.weights, options, args.offline, say, not args.quiet)
    if not args.quiet:
        say(f"runtime {cartoonizer.runtime}, precision {cartoonizer.precision}")
    plan = plan_jobs(args.input, args.output, args.format, args.recursive, args.overwrite)
    summary = run_plan(plan, cartoonizer, say, not args.quiet, options.alpha,
                       video_runner(cartoonizer, args.video_batch))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
