"""Train the white-box cartoonization generator: the command line around whitebox.train.training.

  train.py make-lists --dataset dataset/ --out data_lists/
  train.py pretrain --data-lists data_lists --out runs/pretrain
  train.py train --data-lists data_lists --init-from runs/pretrain/checkpoints \\
                 --vgg vgg19_no_fc.npz --out runs/train
  train.py convert-vgg vgg19_no_fc.npy vgg19_no_fc.npz --trust-pickle

The defaults are the reference's; see docs/TRAINING.md.
"""
import argparse
import sys
from pathlib import Path


def build_parser():
    from whitebox.cli import OneLineParser, path_argument
    from whitebox.cli.train_options import add_config_flags
    from whitebox.train.config import PretrainConfig, TrainConfig

    parser = OneLineParser(prog="train.py", description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    lists = sub.add_parser("make-lists", help="write data_lists/*.txt from image folders")
    lists.add_argument("--dataset", metavar="DIR",
                       help="folder holding photo_face/, photo_scenery/, cartoon_face/, "
                            "cartoon_scenery/ (the reference's dataset/ layout)")
    for domain in ("photo_face", "photo_scenery", "cartoon_face", "cartoon_scenery"):
        lists.add_argument(f"--{domain.replace('_', '-')}", dest=domain, metavar="DIR",
                           help=f"image folder for {domain} (overrides --dataset)")
    lists.add_argument("--out", metavar="DIR", type=path_argument, default="data_lists",
                       help="where the lists go (default data_lists)")
    lists.add_argument("--absolute", action="store_true",
                       help="write absolute paths (default: relative to --out)")

    runs = {"pretrain": (PretrainConfig, "pre-train the generator (L1 reconstruction)"),
            "train": (TrainConfig, "adversarial training")}
    for command, (cls, text) in runs.items():
        run = sub.add_parser(command, help=text)
        add_config_flags(run, cls)
        run.add_argument("--no-progress", dest="no_progress", action="store_true",
                         help="no tqdm progress bar")

    conv = sub.add_parser("convert-vgg", help="convert vgg19_no_fc.npy to a safe .npz")
    conv.add_argument("src", help="the pickled .npy")
    conv.add_argument("dst", help="the .npz to write")
    conv.add_argument("--trust-pickle", dest="trust_pickle", action="store_true",
                      help="required: confirms you trust the .npy's source")
    return parser


def make_config(args):
    """The checked config of pretrain/train; --resume starts from the saved one."""
    from whitebox.cli import output_problem
    from whitebox.cli.train_options import config_from_args
    from whitebox.train import config as cfg

    cls = cfg.PretrainConfig if args.command == "pretrain" else cfg.TrainConfig
    base = cls()
    out_dir = Path(args.out_dir or base.out_dir)
    if args.resume:
        base = cfg.resumed_config(cfg.read_run_config(out_dir), args.strategy)
        if base.command != args.command:
            raise cfg.ConfigError(f"{out_dir} holds a {base.command} run, not {args.command}")
    config = config_from_args(cls, args, base)
    config.validate()
    problem = output_problem(config.out_dir, "--out")
    if problem:
        raise cfg.ConfigError(problem)
    return config


def _make_lists(args):
    from whitebox.train import data

    folders = data.folders_under(args.dataset) if args.dataset else {}
    for domain in data.DOMAINS:
        if getattr(args, domain, None):
            folders[domain] = getattr(args, domain)
    if not folders:
        raise data.DataError("no image folders: give --dataset DIR or --photo-scenery DIR ...")
    counts = data.make_lists(folders, args.out, absolute=args.absolute)
    for domain, n in counts.items():
        print(f"{data.list_path(args.out, domain)}: {n} images")
    missing = [d for d in data.DOMAINS if d not in counts]
    if missing:
        print(f"not written (no folder): {', '.join(missing)}")
    return 0


def _run(args):
    if args.command == "make-lists":
        return _make_lists(args)
    config = make_config(args) if args.command != "convert-vgg" else None
    from whitebox.base.quiet_tf import import_tensorflow

    import_tensorflow()
    if args.command == "convert-vgg":
        from whitebox.model.vgg import convert_npy_to_npz

        convert_npy_to_npz(args.src, args.dst, trust_pickle=args.trust_pickle)
        print(f"wrote {args.dst}; use --vgg {args.dst} (no --trust-pickle needed)")
        return 0
    from whitebox.cli import say
    from whitebox.train import training

    training.run(config, echo=lambda line, problem: say(line, stdout=not problem),
                 progress=not args.no_progress)
    print(f"done: {config.out_dir}")
    return 0


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(build_parser().parse_args(argv)), "train.py")


if __name__ == "__main__":
    sys.exit(main())
