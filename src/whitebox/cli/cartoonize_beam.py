"""Cartoonize every image a Beam filesystem glob matches, on any Beam runner (see --help)."""
import argparse
import logging
import os
import sys
import threading
from pathlib import Path

# The folder holding the whitebox package, for the DirectRunner's worker processes.
SRC = Path(__file__).resolve().parents[2]

DESCRIPTION = """\
Cartoonize photos at scale with Apache Beam's RunInference: the same pipeline runs on the
DirectRunner here and on Dataflow, Flink or Spark (install requirements-beam.txt; see
docs/SCALE.md). Every image gets exactly cartoonize.py's treatment.

PATTERN is any Beam filesystem glob (local, gs://, s3://; quote it): '*' stays within one
folder, '**' descends. Outputs keep the input's path below the pattern's folder, under PREFIX;
existing ones are skipped unless --overwrite. Hidden files and PREFIX's own are ignored; other
non-image files and videos are skipped.

Each failed input (unreadable, not an image, too small, too large, output not writable) is one
JSON line {"path", "reason"} in PREFIX/failed-*.jsonl and never stops the run, which ends with
one line of counts. Exit code: 0 nothing failed, 1 some input failed or the pipeline stopped,
2 usage or weights error, 130 Ctrl-C. Every other option goes to Beam (--runner,
--direct_num_workers, --project, --region, --temp_location, ...).
"""

EPILOG = """\
example: python cartoonize_beam.py --input 'photos/**' --output cartoons/ --format png
example: python cartoonize_beam.py --input 'photos/**' --output cartoons/ \\
             --direct_num_workers 2 --direct_running_mode multi_processing
"""


def parse_args(argv=None):
    """(parser, args, InferenceOptions, Beam's arguments): argparse only, nothing heavy
    imported."""
    from whitebox.cli import OneLineParser, path_argument
    from whitebox.cli.inference_options import (
        add_inference_flags,
        inference_options,
    )
    from whitebox.infer.options import BEAM_BATCH, MAX_SHORT_SIDE

    p = OneLineParser(prog="cartoonize_beam.py", description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", "-i", required=True, metavar="PATTERN", type=path_argument,
                   help="Beam filesystem glob of the photos (quote it)")
    p.add_argument("--output", "-o", required=True, metavar="PREFIX", type=path_argument,
                   help="output folder or bucket prefix")
    add_inference_flags(
        p, ["weights", "format", "max_short_side", "no_guided_filter", "precision", "runtime",
            "alpha", "max_pixels"],
        {"weights": "checkpoint folder or prefix, local or remote (gs://.../saved_models, "
                    "copied by every worker); default as cartoonize.py",
         "max_short_side": f"downscale images whose short side exceeds N pixels (default "
                           f"{MAX_SHORT_SIDE}, the reference's); 0 keeps full resolution, in "
                           f"tiles",
         "precision": "dtype of the generator's convolutions, as cartoonize.py (default "
                      "fp32); a worker without support falls back to fp32",
         "runtime": "what runs the network, as cartoonize.py (default auto: the first "
                    "installed on the workers of openvino, onnxruntime, tf)"})
    p.add_argument("--batch-size", type=int, default=BEAM_BATCH, metavar="N",
                   help=f"most images per network call, same-size images sharing one "
                        f"(default {BEAM_BATCH})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs (default: skip them)")
    add_inference_flags(p, ["offline"])
    args, beam_args = p.parse_known_args(argv)
    options = inference_options(args)
    for problem in (options.problem(), args.batch_size < 1
                    and "--batch-size must be at least 1"):
        if problem:
            p.error(problem)
    return p, args, options, beam_args


def _interrupted(err):
    """Whether a runner's exception is a worker's Ctrl-C, wrapped by Beam."""
    while err is not None:
        if isinstance(err, KeyboardInterrupt) or str(err).startswith("KeyboardInterrupt"):
            return True
        err = err.__cause__ or err.__context__
    return False


def _run_quietly(beam, pattern, settings, options):
    """`beam.run`, hiding what the runner and its workers print on fd 2 (gRPC, start-up lines,
    tracebacks after Ctrl-C) and threads dying with them: the result or error says what
    matters."""
    from whitebox.base.quiet_tf import captured_stderr

    hook = threading.excepthook
    threading.excepthook = lambda args: None
    with captured_stderr():
        totals = beam.run(pattern, settings, options)
    threading.excepthook = hook
    return totals


def main(argv=None):
    """Returns the exit code: 0 nothing failed, 1 some input failed or the pipeline stopped,
    2 usage or weights error, 130 Ctrl-C."""
    from whitebox.cli import run_command, set_pixel_limit

    set_pixel_limit(sys.argv[1:] if argv is None else argv)
    parser, args, options, beam_args = parse_args(argv)
    return run_command(lambda: cartoonize(parser, args, options, beam_args),
                       "cartoonize_beam.py", NOTE)


def cartoonize(parser, args, options, beam_args):
    # Worker processes of the DirectRunner import whitebox from here.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
    # Beam logs a failed step's traceback; the error is reported on one line below instead.
    logging.basicConfig(format="%(message)s", level=logging.CRITICAL)
    from whitebox.base.files import private_tempdir
    from whitebox.base.quiet_tf import import_tensorflow

    import_tensorflow()
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import (
        PipelineOptions,
        PrismRunnerOptions,
        StandardOptions,
    )

    from whitebox.cli import output_problem, say
    from whitebox.infer.weights import load_generator_weights
    from whitebox.model.precision import choose
    from whitebox.serve import beam

    inference, options = options, PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner
    if (runner is None or runner.lower() in ("direct", "directrunner")) and \
            options.view_as(PrismRunnerOptions).prism_location is None:
        # The DirectRunner first tries Prism, which fetches a binary from github.com. Pointed at
        # a missing binary, it falls back at once to the FnApiRunner, on this machine.
        beam_args = [*beam_args, f"--prism_location={private_tempdir() / 'no-prism'}"]
        options = PipelineOptions(beam_args)
    if options.get_all_options()["default_sdk_harness_log_level"] is None and (
            runner is None or runner.lower() in ("direct", "directrunner")):
        # Local worker processes log every step at INFO on this terminal otherwise.
        options = PipelineOptions([*beam_args, "--default_sdk_harness_log_level=ERROR"])
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                     - set(options.get_all_options()))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join('--' + u for u in unknown)}")
    pattern, prefix = beam.absolute(args.input), beam.absolute(args.output)
    problem = None if beam.is_remote(prefix) else output_problem(prefix)
    if problem:
        parser.error(problem)
    if not beam.has_wildcard(pattern):
        if not beam.is_remote(pattern) and os.path.isdir(pattern):
            parser.error(f"--input {pattern} is a folder: give a glob such as "
                         f"'{os.path.join(pattern, '**')}' (quoted)")
        if not FileSystems.exists(pattern):
            parser.error(f"--input {pattern}: no such file (quote a glob such as 'photos/**')")
    settings = beam.Settings(
        prefix=prefix, base=beam.pattern_base(pattern), options=inference,
        weights=args.weights, offline=args.offline, fmt=args.format, overwrite=args.overwrite,
        batch_size=args.batch_size)
    # once here, so that a weights problem is a usage error and not a failed job
    load_generator_weights(beam.stage_weights(args.weights), args.offline, warn=say)
    runtime, precision = choose(inference.runtime, inference.precision, say)
    say(f"runtime {runtime}, precision {precision}")
    try:
        totals = _run_quietly(beam, pattern, settings, options)
    except Exception as err:  # the runner's own error: one line, not its traceback
        if _interrupted(err):
            raise KeyboardInterrupt from None
        lines = str(err).strip().splitlines() or [type(err).__name__]
        say(f"error: the pipeline stopped: {lines[-1]}")
        return 1
    say(f"done {totals['done']}, skipped {totals['skipped']}, failed {totals['failed']}")
    if totals["failed"]:
        failed = FileSystems.join(prefix, beam.FAILED_NAME + "-*" + beam.FAILED_SUFFIX)
        say(f"failures are listed in {failed}")
    elif not any(totals.values()):
        say(f"no files matched {pattern}")
    return 0 if totals["failed"] == 0 else 1


NOTE = "outputs already renamed into place are complete; hidden .part files beside them are not"


if __name__ == "__main__":
    sys.exit(main())
