"""Train several variants of one matrix from the same pre-trained generator, seed and data lists
for --iterations each, and score each as 'evaluate.py paper' does; rerun to resume. Matrices,
outputs, resuming and an example: docs/EVALUATION.md. Exit code: 0 all variants done, 1 some
failed, 2 usage or file error.
"""
import json
import sys
from pathlib import Path

# train.py flags that ablate.py passes to every variant.
TRAIN_FLAGS = ("data_lists", "init_from", "vgg", "trust_pickle", "seed", "batch_size",
               "patch_size", "strategy", "devices")


def parse_args(argv=None):
    from whitebox.cli import OneLineParser, output_problem, path_argument
    from whitebox.cli.train_options import add_config_flags
    from whitebox.evaluate import DEFAULT_BATCH
    from whitebox.train.config import TrainConfig

    p = OneLineParser(prog="ablate.py", description=__doc__)
    p.add_argument("matrix", help="built-in fst or terms, or a .json/.toml file "
                                  '{"variant": {"TrainConfig field": value, ...}, ...}')
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
    p.add_argument("--kid-subsets", type=int, default=100, metavar="K",
                   help="KID rounds (default 100)")
    p.add_argument("--kid-subset-size", type=int, default=1000, metavar="M",
                   help="images drawn per set and round (default 1000)")
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
    problem = output_problem(args.out, "--out")
    if problem:
        p.error(problem)
    return args


def base_config(args):
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
    from whitebox.cli import say

    import_tensorflow()
    from whitebox.evaluate.evaluation import ablate

    rows = ablate(args.matrix, base_config(args), args.out, args.photos, args.cartoons,
                  args.inception, fmt=args.format, grid=args.grid,
                  batch_size=args.batch_size_eval, kid=args.kid, kid_subsets=args.kid_subsets,
                  kid_subset_size=args.kid_subset_size, retry_failed=args.retry_failed,
                  progress=not args.quiet, say=say)
    print((Path(args.out) / "ablation.md").read_text(encoding="utf-8"))
    return 0 if all(row["status"] == "done" for row in rows) else 1


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(parse_args(argv)), "ablate.py")


if __name__ == "__main__":
    sys.exit(main())
