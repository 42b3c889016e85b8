"""Run configuration for pre-training and adversarial training, one dataclass per command.

Defaults are the reference's (`train_code/pretrain.py`, `train_code/train.py`). The F_st
switch, the loss-weight presets and the per-term off switches live here and nowhere else; the
training code reads them from a `TrainConfig`.
"""
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from whitebox.base.errors import UsageError
from whitebox.model import PRECISIONS, SN_MODES, SUPERPIXEL_METHODS

# Loss terms of the generator objective, by the paper's names; the reference's TensorBoard name
# of each, and what it compares.
TERMS = ("surface", "texture", "structure", "content", "tv")
TERM_SCALARS = {"surface": "g_loss_blur", "texture": "g_loss_gray",
                "structure": "superpixel_loss", "content": "photo_loss", "tv": "tv_loss"}
TERM_MEANINGS = {"surface": "surface representation, D_blur",
                 "texture": "texture representation, D_gray",
                 "structure": "VGG, structure representation", "content": "VGG, content",
                 "tv": "total variation"}

# g_total = 1e4*tv + 0.1*g_blur + 1*g_gray + 200*(photo + superpixel), as train.py writes it.
CODE_WEIGHTS = {"surface": 0.1, "texture": 1.0, "structure": 200.0, "content": 200.0,
                "tv": 1e4}
# lambda_1..lambda_5 of the paper (REFERENCE.md section 8): the code's, times 10 but for tv.
PAPER_WEIGHTS = {"surface": 1.0, "texture": 10.0, "structure": 2000.0, "content": 2000.0,
                 "tv": 1e4}
PRESETS = {"code": CODE_WEIGHTS, "paper": PAPER_WEIGHTS}

# tf.distribute strategies (distribute.py).
STRATEGIES = ("auto", "one", "mirrored", "multiworker")
# The dtype VGG19 computes in: fp32 (the reference's), same (the run's precision), or auto,
# which is VGG_PRECISION_AUTO[precision] (the choice is argued in docs/TRAINING.md).
VGG_PRECISIONS = ("auto", "fp32", "same")
VGG_PRECISION_AUTO = {"fp32": "fp32", "bf16": "same", "fp16": "fp32"}
CHOICES = {"strategy": STRATEGIES, "precision": PRECISIONS, "loss_weights": tuple(PRESETS),
           "superpixel": SUPERPIXEL_METHODS, "sn_mode": SN_MODES, "vgg_precision": VGG_PRECISIONS}


class ConfigError(UsageError):
    """A configuration value that cannot work; the message names the field."""


@dataclass
class CommonConfig:
    data_lists: str = "data_lists"
    out_dir: str = "runs/pretrain"
    batch_size: int = 16
    patch_size: int = 256
    iterations: int = 50000
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.99
    adam_epsilon: float = 1e-8          # TF1's AdamOptimizer default (Keras defaults to 1e-7)
    face_every: int = 5                 # face batch when iteration % face_every == 0
    seed: int = 0
    save_every: int = 500
    keep_checkpoints: int = 20
    sample_every: int = 500
    print_every: int = 50
    resume: bool = False
    init_from: str = ""                 # initial generator: our checkpoint or a TF1 one
    deterministic: bool = False         # tf.config.experimental.enable_op_determinism()
    strategy: str = "one"               # STRATEGIES; batch_size is the global batch
    devices: str = ""                   # mirrored: comma-separated devices (default all GPUs)
    replicas: int = 0                   # written by the run: replicas in sync
    precision: str = "fp32"             # PRECISIONS; the run records the one it used
    peer_wait: int = 300                # multiworker: seconds to wait for the other workers

    def validate(self):
        _check_numbers(self)
        if self.patch_size % 8:
            raise ConfigError(f"patch_size must be a multiple of 8, got {self.patch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name, allowed in CHOICES.items():
            value = getattr(self, name, allowed[0])
            if value not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")

    def to_json(self):
        return json.dumps({"command": self.command, **dataclasses.asdict(self)}, indent=2,
                          sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields) - {"command"})
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
        for name, value in values.items():
            kind = fields.get(name)
            if kind is not None and not _of_type(value, kind):
                raise ConfigError(f"{name} must be of type {kind.__name__}, got {value!r}")
        return cls(**{k: v for k, v in values.items() if k in fields})

    def make_paths_absolute(self, origin=None):
        """Make the PATH_FIELDS absolute from `origin` (default: the current folder). Returns self."""
        origin = os.path.abspath(origin or os.curdir)
        for name in PATH_FIELDS:
            if getattr(self, name, ""):
                setattr(self, name, os.path.normpath(os.path.join(origin, getattr(self, name))))
        return self


# Fields that name files or folders; a run's config.json holds them absolute.
PATH_FIELDS = ("data_lists", "out_dir", "init_from", "vgg")
# Smallest value of each integer field (the others are >= 1); every float must be finite.
INT_MINIMUMS = {"seed": 0, "replicas": 0, "superpixel_jobs": 0}
SEED_LIMIT = 2 ** 32                    # numpy's seeds are below it


def _of_type(value, kind):
    """Whether a JSON value fits a field of type `kind` (an int is a float; a bool is no int)."""
    if kind in (int, float):
        return isinstance(value, (int, kind)) and not isinstance(value, bool)
    return not isinstance(kind, type) or isinstance(value, kind)


def _check_numbers(config):
    """ConfigError unless every float field and loss weight is finite and every int field is at
    least its INT_MINIMUMS entry (else 1)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.type is float and not math.isfinite(value):
            raise ConfigError(f"{f.name} must be a finite number, got {value}")
        if f.type is int and value < INT_MINIMUMS.get(f.name, 1):
            raise ConfigError(f"{f.name} must be >= {INT_MINIMUMS.get(f.name, 1)}, got {value}")
    if config.seed >= SEED_LIMIT:
        raise ConfigError(f"seed must be < {SEED_LIMIT}, got {config.seed}")
    for term, weight in getattr(config, "weights", {}).items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"{term} weight must be a finite number >= 0, got {weight}")


@dataclass
class PretrainConfig(CommonConfig):
    """`train_code/pretrain.py`: L1 reconstruction of the photo by the raw generator."""
    command = "pretrain"


@dataclass
class TrainConfig(CommonConfig):
    """`train_code/train.py`: adversarial training with the white-box representations."""
    command = "train"
    out_dir: str = "runs/train"
    iterations: int = 100000
    vgg: str = ""                       # vgg19_no_fc.npz/.npy or Keras notop .h5
    trust_pickle: bool = False          # needed to read a pickled .npy
    # The F_st switch (REFERENCE.md section 9). True = the authors' code: every loss term and
    # the superpixel step see gf(photo, G(photo), r=1, eps=1e-2). False = the paper: they all
    # see the raw G(photo).
    fst_in_losses: bool = True
    fst_radius: int = 1
    fst_eps: float = 1e-2
    loss_weights: str = "code"          # preset: code | paper
    weights: dict = field(default_factory=dict)   # per-term overrides of the preset
    disabled: list = field(default_factory=list)  # terms switched off (ablations)
    superpixel: str = "slic"            # slic | selective (selective search, power 1.2)
    superpixel_segments: int = 200
    superpixel_jobs: int = 0            # worker processes; 0 = one per usable CPU
    sn_mode: str = "joint"
    disc_channel: int = 32
    vgg_precision: str = "auto"         # VGG_PRECISIONS
    xla: bool = False                   # compile the G and D updates with XLA (jit_compile)

    def validate(self):
        super().validate()
        for term in list(self.weights) + list(self.disabled):
            if term not in TERMS:
                raise ConfigError(f"unknown loss term {term!r}; terms are {', '.join(TERMS)}")
        if not self.active_weights():
            raise ConfigError("disabled: every loss term is switched off; keep at least one")
        if not self.fst_eps > 0:
            raise ConfigError(f"fst_eps must be > 0, got {self.fst_eps}")
        if not self.vgg and self.active_weights().keys() & {"content", "structure"}:
            raise ConfigError("vgg: a VGG19 weights file is needed for the content and "
                              "structure terms (--vgg PATH), or switch both terms off")

    def vgg_dtype_name(self):
        """The precision VGG19 computes in: 'fp32' or the run's precision."""
        choice = self.vgg_precision
        if choice == "auto":
            choice = VGG_PRECISION_AUTO[self.precision]
        return self.precision if choice == "same" else "fp32"

    def active_weights(self):
        """{term: weight} of the terms that are on (preset, then overrides, minus disabled)."""
        weights = dict(PRESETS[self.loss_weights])
        weights.update({k: float(v) for k, v in self.weights.items()})
        return {k: v for k, v in weights.items() if k not in self.disabled}


def config_from_json(text):
    """A PretrainConfig or TrainConfig from `to_json` output."""
    try:
        values = json.loads(text)
    except ValueError as err:
        raise ConfigError(f"not valid JSON ({err})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"not a JSON object of settings (got {type(values).__name__})")
    command = values.get("command")
    classes = {"pretrain": PretrainConfig, "train": TrainConfig}
    if command not in classes:
        raise ConfigError(f"config JSON has no valid 'command' (got {command!r})")
    return classes[command].from_dict(values)


def read_run_config(out_dir):
    """The config.json of run folder `out_dir`, paths absolute (an old run's relative ones from
    `_start_folder`, else the current folder); ConfigError naming the folder and why."""
    out = Path(out_dir)
    path = out / "config.json"
    if not out.is_dir():
        raise ConfigError(f"{out}: nothing to resume: no such folder")
    if not path.is_file():
        raise ConfigError(f"{out}: nothing to resume: not a run folder (no config.json)")
    try:
        saved = config_from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({err.__class__.__name__})") from None
    except ConfigError as err:
        raise ConfigError(f"{path}: damaged run config: {err}") from None
    return saved.make_paths_absolute(_start_folder(saved.out_dir, out))


def _start_folder(saved_out, out):
    """The folder a run saved with out_dir `saved_out`, now at `out`, was started in (None: not
    known)."""
    saved_parts, now = Path(saved_out).parts, Path(os.path.abspath(out))
    if Path(saved_out).is_absolute() or ".." in saved_parts or not saved_parts:
        return None
    if now.parts[-len(saved_parts):] != saved_parts:
        return None
    return str(Path(*now.parts[:-len(saved_parts)]))


def resumed_config(saved, strategy=None):
    """`saved` as the base of its resumption under `strategy` (None: the saved one); a device
    list belongs to its strategy and is dropped under another."""
    if strategy is None or strategy == saved.strategy:
        return saved
    return dataclasses.replace(saved, strategy=strategy, devices="")


# Fields that may differ on resumption (a moved run folder, N replicas resuming with M, ...).
RESUMABLE_CHANGES = ("resume", "iterations", "print_every", "sample_every", "out_dir",
                     "strategy", "devices", "replicas", "peer_wait", "xla", "vgg_precision")


def resume_mismatches(saved, current):
    """Names of fields (other than RESUMABLE_CHANGES) that differ between two configs.

    fp32 and bf16 checkpoint the same state; fp16 adds its loss scale."""
    a, b = dataclasses.asdict(saved), dataclasses.asdict(current)
    diff = {k for k in a if k not in RESUMABLE_CHANGES and a[k] != b.get(k)}
    if "fp16" not in (a.get("precision"), b.get("precision")):
        diff.discard("precision")
    return sorted(diff)
