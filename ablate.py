#!/usr/bin/env python3
"""Train several variants from one pre-trained generator and score each (see --help)."""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO / "src"))

DESCRIPTION = """\
Ablations end to end: every variant of a matrix is trained from the same pre-trained generator,
seed and data lists for --iterations, then scored as 'evaluate.py paper' scores a checkpoint
(FID/KID to cartoon and to photo on --photos and --cartoons).

Built-in matrices:
  fst    code (defaults), no-fst (F_st off), paper-weights (the paper's lambda),
         paper (F_st off, paper lambda, selective-search structure)
  terms  code, then no-surface, no-texture, no-structure, no-content, no-tv
Or a .json/.toml file: {"variant-name": {"config_field": value, ...}, ...} (TrainConfig
fields, as in a run's config.json; optionally under a "variants" key).

Output folder: one run folder per variant, ablation.json, ablation.md (the table, also printed
on stdout at the end) and ablation.png (the first --grid test photos, one column per variant).
Run the same command again to resume: finished variants are kept, an interrupted one continues
from its last checkpoint. A failed variant (e.g. NaN) is marked failed and the others run.
Exit code: 0 all variants done, 1 some failed, 2 usage or file error.
"""

EPILOG = """\
example:
  python ablate.py fst --out runs/ablate-fst --iterations 2000 \\
      --data-lists data_lists --init-from runs/pretrain/checkpoints --vgg vgg19_no_fc.npz \\
      --photos test_photos/ --cartoons cartoons.npz --inception inception-2015-12-05.tgz
"""


# train.py flags that ablate.py passes to every variant.
TRAIN_FLAGS = ("data_lists", "init_from", "vgg", "trust_pickle", "seed", "batch_size",
               "patch_size", "strategy", "devices")


def parse_args(argv=None):
    from whitebox.cli import OneLineParser, output_problem, path_argument
    from whitebox.cli.train_options import add_config_flags
    from whitebox.evaluate import DEFAULT_BATCH
    from whitebox.train.config import TrainConfig

    p = OneLineParser(prog="ablate.py", description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("matrix", help="fst, terms, or a .json/.toml matrix file")
    p.add_argument("--out", required=True, metavar="DIR", type=path_argument, help="output folder")
    p.add_argument("--iterations", type=int, required=True, metavar="N",
                   help="training iterations per variant")
    add_config_flags(p, TrainConfig, names=TRAIN_FLAGS)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="another TrainConfig field for every variant (VALUE as JSON, else "
                        "text); repeatable")
    p.add_argument("--photos", required=True, metavar="DIR", type=path_argument, help="test photos")
    p.add_argument("--cartoons", required=True, metavar="DIR_OR_NPZ", type=path_argument,
                   help="cartoon images or an evaluate.py stats cache")
    p.add_argument("--inception", required=True, metavar="PATH", type=path_argument,
                   help="as evaluate.py --inception")
    p.add_argument("--kid", action="store_true", help="also KID")
    p.add_argument("--kid-subsets", type=int, default=100, metavar="K")
    p.add_argument("--kid-subset-size", type=int, default=1000, metavar="M")
    p.add_argument("--format", choices=["same", "png", "jpg"], default="same",
                   help="cartoonize.py --format for the evaluation outputs (default same)")
    p.add_argument("--batch-size-eval", type=int, default=DEFAULT_BATCH, metavar="N",
                   help=f"images per Inception call (default {DEFAULT_BATCH})")
    p.add_argument("--grid", type=int, default=6, metavar="N",
                   help="test photos in ablation.png (4 to 8, default 6)")
    p.add_argument("--retry-failed", action="store_true",
                   help="run failed variants again instead of keeping their result")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.iterations < 1:
        p.error("--iterations must be >= 1")
    if not 4 <= args.grid <= 8:
        p.error("--grid must be between 4 and 8")
    if output_problem(args.out, "--out"):
        p.error(output_problem(args.out, "--out"))
    return args


def base_config(args):
    """TrainConfig values shared by every variant."""
    from whitebox.base.errors import UsageError
    from whitebox.cli.train_options import given_values
    from whitebox.train.config import TrainConfig

    save = min(500, args.iterations)
    base = {**given_values(TrainConfig, args), "iterations": args.iterations,
            "save_every": save, "sample_every": save, "print_every": min(50, args.iterations)}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"--set {item!r}: expected FIELD=VALUE")
        try:
            base[key.strip()] = json.loads(text)
        except ValueError:
            base[key.strip()] = text
    return base


def _run(args):
    from whitebox.base.quiet_tf import import_tensorflow

    import_tensorflow()
    from whitebox.evaluate.evaluation import ablate

    rows = ablate(args.matrix, base_config(args), args.out, args.photos, args.cartoons,
                  args.inception, fmt=args.format, grid=args.grid,
                  batch_size=args.batch_size_eval, kid=args.kid, kid_subsets=args.kid_subsets,
                  kid_subset_size=args.kid_subset_size, retry_failed=args.retry_failed,
                  progress=not args.quiet)
    print((Path(args.out) / "ablation.md").read_text(encoding="utf-8"))
    return 0 if all(row["status"] == "done" for row in rows) else 1


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(parse_args(argv)), "ablate.py")


if __name__ == "__main__":
    sys.exit(main())
