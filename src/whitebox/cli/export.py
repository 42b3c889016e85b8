"""Export the cartoonizer to SavedModel, TFLite or ONNX, then check it against TF (see --help)."""
import argparse
import sys

DESCRIPTION = """\
Export the generator and the photo-guided filter (r=1, eps=5e-3), float32, in one of:

  savedmodel OUT   a SavedModel folder: 'serving_default' takes 'image', uint8 [H, W, 3] BGR
                   of any size, and does cartoonize.py's preprocessing in TF ops ->
                   'cartoon', uint8 BGR; 'cartoonize_float' takes 'photo', float32
                   [1, H, W, 3] BGR in [-1, 1] (H, W multiples of 4) -> 'output', float32
  tflite OUT       a .tflite flatbuffer of the float function, input size free (resize the
                   input tensor before allocating)
  onnx OUT         an .onnx model of the float function (needs tf2onnx: pip install -r
                   requirements-export.txt), input 'photo' [1, H, W, 3]

Then the export runs on one image next to TF and the max difference in 8-bit levels is
printed. Exit code 1 when writing failed or the difference exceeds 1 level (for --quantize
fp16/dynamic: a PSNR under 45/30 dB); 2 for usage (an OUT that cannot be written included),
weights, or a missing optional package. Details: docs/DEPLOYMENT.md, "Export".
"""


def parse_args(argv=None):
    from whitebox.cli import OneLineParser
    from whitebox.cli.inference_options import add_inference_flags, inference_options
    from whitebox.infer.options import DEFAULT_OPSET, MAX_SHORT_SIDE, QUANTIZE

    p = OneLineParser(prog="export.py", description=DESCRIPTION,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("format", choices=["savedmodel", "tflite", "onnx"])
    p.add_argument("out", metavar="OUT", help="output folder (savedmodel) or file")
    add_inference_flags(p, ["weights", "offline"])
    p.add_argument("--quantize", choices=QUANTIZE, default="none",
                   help="tflite only: weight quantization (default none; fp16: float16 "
                        "weights, half the file; dynamic: int8 weights)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"onnx only: ONNX opset (default {DEFAULT_OPSET})")
    add_inference_flags(p, ["max_short_side", "no_guided_filter"], {
        "max_short_side": f"savedmodel only: the uint8 signature's short-side cap (default "
                          f"{MAX_SHORT_SIDE}, 0 for none)",
        "no_guided_filter": "export the generator without the guided filter"})
    p.add_argument("--no-check", action="store_true", help="skip the check against TF")
    args = p.parse_args(argv)
    if args.format != "savedmodel" and not args.out.lower().endswith(f".{args.format}"):
        p.error(f"{args.out}: {args.format} writes one file whose name ends in "
                f".{args.format}")
    if args.quantize != "none" and args.format != "tflite":
        p.error("--quantize applies to tflite only")
    options = inference_options(args)
    if options.problem():
        p.error(options.problem())
    return args, options


def main(argv=None):
    """Returns the exit code: 0 written and checked, 1 writing or the check failed, 2 usage,
    weights or a missing optional package."""
    from whitebox.cli import run_command

    args, options = parse_args(argv)
    return run_command(lambda: export(args, options), "export.py")


def export(args, options):
    import time

    from whitebox.base.quiet_tf import import_tensorflow
    from whitebox.cli import say

    import_tensorflow()
    from whitebox.infer import export
    from whitebox.infer.export_check import verify_export

    module = export.export_module(args.format, args.out, args.weights, options, args.offline,
                                  say)
    start = time.perf_counter()
    export.write_export(module, args.format, args.out, args.quantize, args.opset)
    print(f"wrote {args.out} ({args.format}) in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    if args.no_check:
        return 0
    try:
        lines, problem = verify_export(module, args.format, args.out, args.quantize)
    except export.MissingDependency as err:
        print(f"check skipped: {err}", file=sys.stderr)
        return 0
    print("\n".join(lines))
    if problem:
        raise problem
    return 0


if __name__ == "__main__":
    sys.exit(main())
