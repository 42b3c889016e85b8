"""FID and KID between image sets, and the paper's two numbers for a checkpoint (see --help)."""
import argparse
import json
import sys

DESCRIPTION = """\
FID (and KID) with the 2015-12-05 Inception-v3 graph, following TTUR's protocol.

  fid A B      A and B are image folders or .npz caches written by 'stats'
  stats DIR    embed a folder once and save its statistics (and features, for KID)
  paper        cartoonize --photos as cartoonize.py does, then FID to cartoon (against
               --cartoons) and FID to photo (against the photos cartoonized), beside the
               paper's values; the report warns when the two sides differ in n

--inception: classify_image_graph_def.pb or inception-2015-12-05.tgz, fetched by you (a Keras
InceptionV3 no-top .h5 works but is not comparable). Reports (JSON on stdout) state n and the
extractor. Unreadable images are reported on stderr, skipped and counted.
Exit code: 0 done, 2 usage or file error.
"""

EPILOG = """\
examples:
  python evaluate.py stats cartoons/ --inception inception-2015-12-05.tgz -o cartoons.npz
  python evaluate.py fid outputs/ cartoons.npz --inception inception-2015-12-05.tgz --kid
  python evaluate.py paper --weights runs/x/checkpoints --photos test_photos/ \\
      --cartoons cartoons.npz --inception inception-2015-12-05.tgz
What is comparable with the paper: docs/EVALUATION.md.
"""


def parse_args(argv=None):
    from whitebox.cli import OneLineParser, path_argument
    from whitebox.cli.inference_options import add_inference_flags
    from whitebox.evaluate import DEFAULT_BATCH

    p = OneLineParser(prog="evaluate.py", description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def common(q, inception_required):
        q.add_argument("--inception", required=inception_required, metavar="PATH",
                       type=path_argument,
                       help="classify_image_graph_def.pb, inception-2015-12-05.tgz, or a "
                            "Keras InceptionV3 no-top .h5 (not comparable)")
        q.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, metavar="N",
                       help=f"images per network call (default {DEFAULT_BATCH}; 1 feeds each "
                            f"image at its own size, as TTUR; the numbers are the same)")
        q.add_argument("--recursive", "-r", action="store_true",
                       help="also take images in sub-folders")
        q.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    def kid_options(q):
        q.add_argument("--kid", action="store_true", help="also report KID (needs features)")
        q.add_argument("--kid-subsets", type=int, default=100, metavar="K",
                       help="KID rounds (default 100)")
        q.add_argument("--kid-subset-size", type=int, default=1000, metavar="M",
                       help="images drawn per side and round (default 1000, capped at n)")
        q.add_argument("--seed", type=int, default=0, help="KID sampling seed (default 0)")

    q = sub.add_parser("fid", help="FID (and KID) between two folders or caches")
    q.add_argument("a", metavar="A", type=path_argument, help="image folder or .npz cache")
    q.add_argument("b", metavar="B", type=path_argument, help="image folder or .npz cache")
    common(q, inception_required=False)
    kid_options(q)

    q = sub.add_parser("stats", help="save a folder's statistics cache (.npz)")
    q.add_argument("folder", metavar="DIR", type=path_argument)
    q.add_argument("--output", "-o", required=True, metavar="FILE.npz")
    q.add_argument("--no-features", action="store_true",
                   help="store only mean and covariance (smaller; then no KID from it)")
    common(q, inception_required=True)

    q = sub.add_parser("paper", help="cartoonize, then FID to cartoon and FID to photo")
    q.add_argument("--photos", required=True, metavar="DIR", help="test photos")
    q.add_argument("--cartoons", required=True, metavar="DIR_OR_NPZ",
                   help="cartoon images (folder or cache)")
    add_inference_flags(q, ["weights"])
    q.add_argument("--output", "-o", metavar="DIR", type=path_argument,
                   help="keep the cartoonized photos here (default: a temporary folder); "
                        "refused when an output would replace a photo or a cartoon, or join "
                        "the --cartoons folder")
    q.add_argument("--overwrite", action="store_true",
                   help="replace outputs that exist in --output (default: refuse to start)")
    add_inference_flags(q, ["format", "offline"])
    q.add_argument("--markdown", metavar="FILE", help="also write the Markdown table here")
    common(q, inception_required=True)
    kid_options(q)
    args = p.parse_args(argv)
    if args.command == "stats" and not args.output.lower().endswith(".npz"):
        p.error("stats --output must end with .npz")
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    if getattr(args, "kid", False) and (args.kid_subsets < 1 or args.kid_subset_size < 2):
        p.error("--kid-subsets must be >= 1 and --kid-subset-size >= 2")
    return args


def _run(args):
    from whitebox.base.quiet_tf import import_tensorflow

    import_tensorflow()
    from whitebox.cli import say
    from whitebox.evaluate import evaluation

    extractor = evaluation.Extractor(args.inception, args.batch_size)
    progress = not args.quiet
    if args.command == "stats":
        report = evaluation.stats_report(args.folder, args.output, extractor, args.recursive,
                                         progress, not args.no_features, say)
    else:
        kid = evaluation.Kid(args.kid, args.kid_subsets, args.kid_subset_size, args.seed)
        if args.command == "fid":
            report = evaluation.fid_report(args.a, args.b, extractor, args.recursive, progress,
                                           kid, say)
        else:
            run = evaluation.PaperRun(args.photos, args.cartoons, args.weights, args.output,
                                      args.format, args.offline, args.markdown, args.recursive,
                                      args.overwrite)
            report = evaluation.paper_report(run, extractor, kid, progress, say)
            if progress:
                say(report["markdown"])
    print(json.dumps(report, indent=2))
    return 0


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(parse_args(argv)), "evaluate.py")


if __name__ == "__main__":
    sys.exit(main())
