"""Command-line flags for the fields of PretrainConfig and TrainConfig (without TensorFlow), and
the config back from them. Every flag defaults to None, so a config is `base` (the defaults or
a saved run's config.json) overridden by the flags given only.
"""
import argparse
import dataclasses

from whitebox.cli import path_argument
from whitebox.train.config import CHOICES, TERM_MEANINGS, TERM_SCALARS, TERMS

# field: (flag, metavar or None, help); the help gets the class's default. Fields not listed
# have no flag.
FLAGS = {
    "data_lists": ("--data-lists", "DIR",
                   "folder with photo_face.txt, photo_scenery.txt, cartoon_*.txt"),
    "out_dir": ("--out", "DIR",
                "run folder: config.json, log.txt, train_log/, images/, checkpoints/"),
    "batch_size": ("--batch-size", None, "images per batch"),
    "patch_size": ("--patch-size", None, "larger images get a random crop of this size"),
    "iterations": ("--iterations", None, "total iterations"),
    "lr": ("--lr", None, "Adam learning rate"),
    "seed": ("--seed", None, "seeds weights, batches and colour shifts"),
    "init_from": ("--init-from", "CKPT",
                  "initial generator weights: a run's checkpoints/ folder or prefix, or a TF1 "
                  "checkpoint (the reference's pretrain/saved_models)"),
    "resume": ("--resume", None, "continue the run in --out from its last checkpoint with its "
               "saved settings (a few, e.g. --iterations, may change)"),
    "save_every": ("--save-every", None, "checkpoint every N iterations"),
    "keep_checkpoints": ("--keep", None, "checkpoints kept"),
    "sample_every": ("--sample-every", None, "sample grids every N iterations"),
    "print_every": ("--print-every", None, "loss line every N iterations"),
    "deterministic": ("--deterministic", None, "enable TensorFlow op determinism (slower)"),
    "strategy": ("--strategy", None,
                 "one (a single device), mirrored (the local GPUs or --devices), multiworker "
                 "(the machines of TF_CONFIG) or auto (mirrored with over one GPU); "
                 "--batch-size is global"),
    "devices": ("--devices", "LIST",
                "devices of --strategy mirrored, comma-separated (e.g. /gpu:0,/gpu:1)"),
    "peer_wait": ("--peer-wait", "SECONDS",
                  "multiworker: how long a worker waits for the others of TF_CONFIG before it "
                  "stops, naming those that did not answer"),
    "precision": ("--precision", None,
                  "compute precision of G and the discriminators: fp32 (the reference), bf16 or "
                  "fp16 (dynamic loss scaling); weights and Adam stay float32; unsupported here: "
                  "fp32 with a notice"),
    "vgg": ("--vgg", "FILE",
            "VGG19 weights: .npz (safe), vgg19_no_fc.npy (needs --trust-pickle) or Keras "
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "trust_pickle": ("--trust-pickle", None, "allow loading a pickled .npy VGG file"),
    "fst_in_losses": ("--fst-in-losses", None,
                      "on (the authors' code): every loss and the superpixel step see "
                      "gf(photo, G(photo), r=1, eps=1e-2); off (the paper): the raw G(photo)"),
    "loss_weights": ("--loss-weights", None,
                     "weight preset: code (1e4 tv, 0.1 blur, 1 gray, 200 VGG terms) or paper "
                     "(lambda 1, 10, 2000, 2000, 1e4)"),
    "superpixel": ("--superpixel", None,
                   "structure representation: slic (the code) or selective (selective search "
                   "+ adaptive colouring, power 1.2, the paper)"),
    "superpixel_segments": ("--superpixel-segments", None,
                            "SLIC segments / selective-search pairs"),
    "superpixel_jobs": ("--superpixel-jobs", None,
                        "superpixel worker processes; 0 is one per CPU"),
    "sn_mode": ("--sn-mode", None,
                "spectral norm u update: joint (one call on [real; fake], u advances once "
                "per step as in TF1) or separate (two calls, twice)"),
    "vgg_precision": ("--vgg-precision", None,
                      "dtype of VGG19 (content and structure losses): fp32 (the reference), "
                      "same (the --precision of the run) or auto (same with bf16, else fp32; "
                      "see docs/TRAINING.md)"),
    "xla": ("--xla", None,
            "compile the G and D updates with XLA (jit_compile); the superpixel step stays "
            "outside, fed by its own generator pass, as in the reference"),
}


def add_config_flags(parser, cls, names=None):
    """Add the flags of the fields of `cls` (of those in `names`), in field order."""
    defaults = cls()
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        if f.name in ("weights", "disabled"):
            _add_term_flags(parser, f.name)
        elif f.name in FLAGS:
            _add_field_flag(parser, f, getattr(defaults, f.name))


def _add_field_flag(parser, f, default):
    """A bool field is a switch: --x/--no-x when its default is True, else --x."""
    flag, metavar, text = FLAGS[f.name]
    if f.type is bool and default:
        parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                            default=None, help=f"{text} (default on)")
    elif f.type is bool:
        parser.add_argument(flag, dest=f.name, action="store_true", default=None, help=text)
    else:
        shown = f" (default {default})" if default != "" else ""
        kind = path_argument if f.name in ("data_lists", "out_dir") else f.type
        parser.add_argument(flag, dest=f.name, type=kind, metavar=metavar,
                            choices=CHOICES.get(f.name), help=text + shown)


def _add_term_flags(parser, field_name):
    """`weights`: --<term>-weight W for every loss term; `disabled`: --no-<term>."""
    for term in TERMS:
        what = f"{TERM_SCALARS[term]} ({TERM_MEANINGS[term]})"
        if field_name == "weights":
            parser.add_argument(f"--{term}-weight", dest=f"weight_{term}", type=float,
                                metavar="W", help=f"override the weight of {what}")
        else:
            parser.add_argument(f"--no-{term}", dest=f"no_{term}", action="store_true",
                                default=None, help=f"switch off {what}")


def given_values(cls, args):
    """{field: value} of the config flags given in `args`, --<term>-weight in `weights`,
    --no-<term> in `disabled`."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if getattr(args, f.name, None) is not None}
    weights = {t: getattr(args, f"weight_{t}") for t in TERMS
               if getattr(args, f"weight_{t}", None) is not None}
    disabled = [t for t in TERMS if getattr(args, f"no_{t}", None)]
    if weights:
        values["weights"] = weights
    if disabled:
        values["disabled"] = disabled
    return values


def config_from_args(cls, args, base=None):
    """`base` (default `cls()`) with the flags given in `args`; weights and switched-off terms
    add to the base's."""
    base = base or cls()
    given = given_values(cls, args)
    values = {**vars(base), **given}
    if "weights" in given:
        values["weights"] = {**base.weights, **given["weights"]}
    if "disabled" in given:
        values["disabled"] = sorted(set(base.disabled) | set(given["disabled"]))
    return cls.from_dict(values)
