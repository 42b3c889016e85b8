#!/usr/bin/env python3
"""Train the white-box cartoonization generator: the command line around whitebox.training.

  train.py make-lists --dataset dataset/ --out data_lists/
  train.py pretrain --data-lists data_lists --out runs/pretrain
  train.py train --data-lists data_lists --init-from runs/pretrain/checkpoints \\
                 --vgg vgg19_no_fc.npz --out runs/train
  train.py convert-vgg vgg19_no_fc.npy vgg19_no_fc.npz --trust-pickle

Defaults are the reference's (batch 16, patch 256, 50,000 / 100,000 iterations, Adam 2e-4,
0.5, 0.99, epsilon 1e-8). `--resume` continues the run in --out from its last checkpoint with
the saved settings; flags given with it must agree with them (except --iterations).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

TERMS = ("surface", "texture", "structure", "content", "tv")
TERM_HELP = {"surface": "g_loss_blur (surface representation, D_blur)",
             "texture": "g_loss_gray (texture representation, D_gray)",
             "structure": "superpixel_loss (VGG, structure representation)",
             "content": "photo_loss (VGG, content)",
             "tv": "tv_loss (total variation)"}


def _common(p):
    p.add_argument("--data-lists", dest="data_lists", metavar="DIR",
                   help="folder with photo_face.txt, photo_scenery.txt, cartoon_*.txt "
                        "(default: data_lists)")
    p.add_argument("--out", dest="out_dir", metavar="DIR",
                   help="run folder: config.json, log.txt, train_log/, images/, checkpoints/")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="default 16")
    p.add_argument("--patch-size", dest="patch_size", type=int,
                   help="default 256; larger images get a random crop of this size")
    p.add_argument("--iterations", type=int,
                   help="total iterations (default 50000 pretrain, 100000 train)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 2e-4)")
    p.add_argument("--seed", type=int, help="seeds weights, batches and colour shifts "
                                            "(default 0)")
    p.add_argument("--init-from", dest="init_from", metavar="CKPT",
                   help="initial generator weights: a run's checkpoints/ folder or prefix, or "
                        "a TF1 checkpoint (the reference's pretrain/saved_models)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--save-every", dest="save_every", type=int, help="default 500")
    p.add_argument("--keep", dest="keep_checkpoints", type=int,
                   help="checkpoints kept (default 20)")
    p.add_argument("--sample-every", dest="sample_every", type=int,
                   help="sample grids every N iterations (default 500)")
    p.add_argument("--print-every", dest="print_every", type=int,
                   help="loss line every N iterations (default 50)")
    p.add_argument("--deterministic", action="store_true",
                   help="enable TensorFlow op determinism (slower)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true",
                   help="no tqdm progress bar")


def _train_options(p):
    p.add_argument("--vgg", metavar="FILE",
                   help="VGG19 weights: .npz (safe), vgg19_no_fc.npy (needs --trust-pickle) "
                        "or Keras vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    p.add_argument("--trust-pickle", dest="trust_pickle", action="store_true",
                   help="allow loading a pickled .npy VGG file")
    p.add_argument("--fst-in-losses", dest="fst_in_losses",
                   action=argparse.BooleanOptionalAction,
                   help="on (default, the authors' code): every loss and the superpixel step "
                        "see gf(photo, G(photo), r=1, eps=1e-2); off (the paper): the raw "
                        "G(photo)")
    p.add_argument("--loss-weights", dest="loss_weights", choices=("code", "paper"),
                   help="weight preset: code (1e4 tv, 0.1 blur, 1 gray, 200 VGG terms; "
                        "default) or paper (lambda 1, 10, 2000, 2000, 1e4)")
    for term in TERMS:
        p.add_argument(f"--{term}-weight", dest=f"weight_{term}", type=float, metavar="W",
                       help=f"override the weight of {TERM_HELP[term]}")
        p.add_argument(f"--no-{term}", dest=f"no_{term}", action="store_true",
                       help=f"switch off {TERM_HELP[term]}")
    p.add_argument("--superpixel", choices=("slic", "selective"),
                   help="structure representation: slic (default, the code) or selective "
                        "(selective search + adaptive colouring, power 1.2, the paper)")
    p.add_argument("--superpixel-segments", dest="superpixel_segments", type=int,
                   help="SLIC segments / selective-search pairs (default 200)")
    p.add_argument("--superpixel-jobs", dest="superpixel_jobs", type=int,
                   help="superpixel worker processes (default 0: one per CPU)")
    p.add_argument("--sn-mode", dest="sn_mode", choices=("joint", "separate"),
                   help="spectral norm u update: joint (default; one call on [real; fake], u "
                        "advances once per step as in TF1) or separate (two calls, twice)")


def build_parser(suppress=False):
    """The argument parser; with `suppress`, options not given are absent from the result."""
    extra = {"argument_default": argparse.SUPPRESS} if suppress else {}
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    lists = sub.add_parser("make-lists", help="write data_lists/*.txt from image folders", **extra)
    lists.add_argument("--dataset", metavar="DIR",
                       help="folder holding photo_face/, photo_scenery/, cartoon_face/, "
                            "cartoon_scenery/ (the reference's dataset/ layout)")
    for domain in ("photo_face", "photo_scenery", "cartoon_face", "cartoon_scenery"):
        lists.add_argument(f"--{domain.replace('_', '-')}", dest=domain, metavar="DIR",
                           help=f"image folder for {domain} (overrides --dataset)")
    lists.add_argument("--out", metavar="DIR", help="where the lists go (default data_lists)")
    lists.add_argument("--absolute", action="store_true",
                       help="write absolute paths (default: relative to --out)")

    pre = sub.add_parser("pretrain", help="pre-train the generator (L1 reconstruction)", **extra)
    _common(pre)
    train = sub.add_parser("train", help="adversarial training", **extra)
    _common(train)
    _train_options(train)

    conv = sub.add_parser("convert-vgg", help="convert vgg19_no_fc.npy to a safe .npz", **extra)
    conv.add_argument("src", help="the pickled .npy")
    conv.add_argument("dst", help="the .npz to write")
    conv.add_argument("--trust-pickle", dest="trust_pickle", action="store_true",
                      help="required: confirms you trust the .npy's source")
    return parser


def _config_values(args):
    """Config field values from parsed options (only those present)."""
    values = {}
    skip = {"command", "no_progress"}
    for key, value in vars(args).items():
        if key in skip or value is None:
            continue
        if key.startswith("weight_"):
            values.setdefault("weights", {})[key[len("weight_"):]] = value
        elif key.startswith("no_"):
            if value:
                values.setdefault("disabled", []).append(key[len("no_"):])
        elif key in ("resume", "deterministic", "trust_pickle") and not value:
            continue
        else:
            values[key] = value
    return values


def make_config(argv):
    """(config, args) for the pretrain/train commands; --resume starts from the saved config."""
    from whitebox import config as cfg

    args = build_parser().parse_args(argv)
    given = _config_values(build_parser(suppress=True).parse_args(argv))
    cls = cfg.PretrainConfig if args.command == "pretrain" else cfg.TrainConfig
    base = cls()
    out_dir = Path(given.get("out_dir", base.out_dir))
    saved_path = out_dir / "config.json"
    if given.get("resume") and saved_path.is_file():
        base = cfg.config_from_json(saved_path.read_text(encoding="utf-8"))
        if base.command != args.command:
            raise cfg.ConfigError(f"{out_dir} holds a {base.command} run, not {args.command}")
    values = {**vars(base), **given}
    if "weights" in given:
        values["weights"] = {**base.weights, **given["weights"]}
    if "disabled" in given:
        values["disabled"] = sorted(set(base.disabled) | set(given["disabled"]))
    return cls.from_dict(values), args


def _make_lists(args):
    from whitebox import data

    folders = data.folders_under(args.dataset) if args.dataset else {}
    for domain in data.DOMAINS:
        if getattr(args, domain, None):
            folders[domain] = getattr(args, domain)
    if not folders:
        raise data.DataError("no image folders: give --dataset DIR or --photo-scenery DIR ...")
    out = args.out or "data_lists"
    counts = data.make_lists(folders, out, absolute=args.absolute)
    for domain, n in counts.items():
        print(f"{data.list_path(out, domain)}: {n} images")
    missing = [d for d in data.DOMAINS if d not in counts]
    if missing:
        print(f"not written (no folder): {', '.join(missing)}")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)

    from whitebox.data import DataError
    if args.command == "make-lists":
        try:
            return _make_lists(args)
        except DataError as err:
            print(f"train.py: error: {err}", file=sys.stderr)
            return 2

    from whitebox.quiet_tf import import_tensorflow
    import_tensorflow()
    from whitebox.checkpoints import CheckpointError
    from whitebox.config import ConfigError
    from whitebox.training import TrainingDiverged
    from whitebox.vgg import VGGWeightsError, convert_npy_to_npz

    try:
        if args.command == "convert-vgg":
            convert_npy_to_npz(args.src, args.dst, trust_pickle=args.trust_pickle)
            print(f"wrote {args.dst}; use --vgg {args.dst} (no --trust-pickle needed)")
            return 0
        from whitebox import training
        config, args = make_config(argv)
        training.run(config, progress=not args.no_progress)
        print(f"done: {config.out_dir}")
        return 0
    except TrainingDiverged as err:
        print(f"train.py: stopped: {err}", file=sys.stderr)
        return 3
    except (ConfigError, DataError, VGGWeightsError, CheckpointError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
