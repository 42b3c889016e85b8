#!/usr/bin/env python3
"""Export the cartoonizer to SavedModel, TFLite or ONNX, then check it against TF (see --help)."""
import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "src"))

DESCRIPTION = """\
Export the generator and the photo-guided filter (r=1, eps=5e-3), float32, in one of:

  savedmodel OUT   a SavedModel folder. Signature 'serving_default': input 'image', uint8
                   [H, W, 3] BGR of any size -> output 'cartoon', uint8 BGR, with
                   cartoonize.py's preprocessing done in TF ops (short side capped at 720 by
                   area resizing, top-left crop to multiples of 8). Signature
                   'cartoonize_float': input 'photo', float32 [1, H, W, 3] BGR in [-1, 1]
                   (H, W multiples of 4) -> output 'output', float32, for your own
                   preprocessing.
  tflite OUT       a .tflite flatbuffer of the float function, input size free (resize the
                   input tensor before allocating). --quantize fp16 halves the file
                   (float16 weights); --quantize dynamic stores int8 weights.
  onnx OUT         an .onnx model of the float function through tf2onnx (optional: pip install
                   -r requirements-export.txt), input 'photo' [1, H, W, 3].

After writing, the export is run on one image (scikit-image's astronaut) next to TF: for a
SavedModel, a 730x1100 image that 'serving_default' has to resize (short side 10 pixels over
the cap), compared with cartoonize.py's bytes; for TFLite and ONNX, 256x256. The command prints
the max difference in 8-bit levels and exits 1 if it exceeds 1 level (for --quantize
fp16/dynamic, if the PSNR is under 45/30 dB instead) or if writing failed. Exit code 2: usage
(including an OUT that cannot be written), weights, or a missing optional package.
"""


def parse_args(argv=None):
    from whitebox.quiet_tf import import_tensorflow

    import_tensorflow()
    from whitebox.export import DEFAULT_OPSET, QUANTIZE
    from whitebox.inference import MAX_SHORT_SIDE

    p = argparse.ArgumentParser(prog="export.py", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("format", choices=["savedmodel", "tflite", "onnx"])
    p.add_argument("out", metavar="OUT", help="output folder (savedmodel) or file")
    p.add_argument("--weights", "-w", metavar="PATH",
                   help="checkpoint folder or prefix, as in cartoonize.py (default: "
                        "pretrained/, else the authors' checkpoint from the cache)")
    p.add_argument("--offline", action="store_true", help="never download weights")
    p.add_argument("--quantize", choices=QUANTIZE, default="none",
                   help="tflite only: weight quantization (default none)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"onnx only: ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--max-short-side", type=int, default=MAX_SHORT_SIDE, metavar="N",
                   help=f"savedmodel only: the uint8 signature's short-side cap (default "
                        f"{MAX_SHORT_SIDE}, 0 for none)")
    p.add_argument("--no-guided-filter", action="store_true",
                   help="export the generator without the guided filter")
    p.add_argument("--no-check", action="store_true", help="skip the check against TF")
    args = p.parse_args(argv)
    if args.quantize != "none" and args.format != "tflite":
        p.error("--quantize applies to tflite only")
    if args.max_short_side < 0:
        p.error("--max-short-side must be 0 or positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    import tensorflow as tf

    from whitebox import export as ex
    from whitebox.checkpoints import CheckpointError
    from whitebox.image_io import write_bytes_atomic
    from whitebox.inference import to_unit_range
    from whitebox.weights import WeightsUnavailable, load_generator_weights

    problem = ex.output_problem(args.out, args.format)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.format == "onnx":
        try:
            ex.import_tf2onnx()
        except ex.MissingDependency as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    try:
        generator = load_generator_weights(args.weights, args.offline)
    except (CheckpointError, WeightsUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    module = ex.ExportModule(generator, max_short_side=args.max_short_side,
                             use_guided_filter=not args.no_guided_filter)
    out = Path(args.out)
    start = time.perf_counter()
    try:
        if args.format == "savedmodel":
            ex.save_savedmodel(module, out)
        elif args.format == "tflite":
            write_bytes_atomic(out, ex.tflite_bytes(module, args.quantize))
        else:
            write_bytes_atomic(out, ex.onnx_bytes(module, args.opset))
    except ex.MissingDependency as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, tf.errors.OpError) as err:
        reason = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err)
        print(f"error: cannot write {out}: {reason.splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({args.format}) in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    if args.no_check:
        return 0

    kind = args.format if args.quantize == "none" else args.quantize
    label = {"savedmodel": "savedmodel cartoonize_float (float)",
             "tflite": f"tflite --quantize {args.quantize}", "onnx": "onnx"}[args.format]
    try:
        if args.format == "savedmodel":
            result = ex.check_savedmodel(out, generator, args.max_short_side,
                                         not args.no_guided_filter)
            size = "{}x{}".format(*result["resized"])
            print("check savedmodel serving_default (uint8): max difference {} levels against "
                  "cartoonize.py on {}x{} ({} after the cap and crop)".format(
                      result["uint8_levels"], *result["input"], size))
            levels, db = result["float_levels"], result["psnr"]
            worst = max(levels, result["uint8_levels"])
        else:
            image = ex.check_image(args.max_short_side)
            size = f"{image.shape[1]}x{image.shape[0]}"
            runner = ex.tflite_runner if args.format == "tflite" else ex.onnx_runner
            got = runner(out.read_bytes())(to_unit_range(image)[None])
            levels, db = ex.compare(ex.reference_output(module, image), got)
            worst = levels
    except ex.MissingDependency as err:
        print(f"check skipped: {err}", file=sys.stderr)
        return 0
    except ex.ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"check {label}: max difference {levels} levels, PSNR {db:.1f} dB against TF on "
          f"{size}")
    try:
        ex.check_tolerance(kind, worst, db)
    except ex.ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
