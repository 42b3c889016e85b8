"""The training run around the steps of `steps.py`: the run folder (config.json, log.txt,
TensorBoard scalars, sample grids, checkpoints), resume, the NaN stop and the loop.
"""
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox.base.errors import WhiteboxError
from whitebox.base.image_io import to_uint8, write_atomic, write_text_atomic
from whitebox.model.checkpoints import (
    list_checkpoints,
    load_generator,
    restore_newest,
    set_aside,
)
from whitebox.model.precision import resolve_precision, resolve_xla
from whitebox.train import data as data_lib
from whitebox.train import distribute
from whitebox.train.config import ConfigError, read_run_config, resume_mismatches
from whitebox.train.steps import AdversarialStep, PretrainStep

# The reference's TensorBoard scalar names, in the order it declares them.
SCALARS = ("tv_loss", "photo_loss", "superpixel_loss", "recon_loss", "d_loss_gray",
           "g_loss_gray", "d_loss_blur", "g_loss_blur", "d_loss_total", "g_loss_total")


class TrainingDiverged(WhiteboxError):
    """A loss became NaN or infinite; the message names the iteration, the term and the last
    checkpoint (exit 3)."""
    exit_code = 3


# ---------------------------------------------------------------------------- outputs

def image_grid(batch, columns=4, max_images=16):
    """Up to `max_images` images of a [N, H, W, 3] batch in rows of `columns` (the reference's
    4x4 grid at batch 16); missing cells are black. Returns uint8 BGR."""
    images = to_uint8(batch[:max_images])
    n, h, w, c = images.shape
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * h, columns * w, c), np.uint8)
    for k in range(n):
        r, col = divmod(k, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[k]
    return grid


class RunLog:
    """Lines to `<out>/log.txt` and to the console (through tqdm, so the bar stays intact):
    progress on stdout, problems (`problem`) on stderr."""

    def __init__(self, path, echo=True):
        self.path = path
        self.echo = echo

    def __call__(self, line):
        self._write(line, sys.stdout)

    def problem(self, line):
        self._write(line, sys.stderr)

    def _write(self, line, stream):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.echo:
            from tqdm import tqdm
            tqdm.write(line, file=stream)


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def write_scalar(name, value, step):
    """A TensorBoard scalar in the default summary writer, written the way TensorBoard's own
    `scalar` op writes it (a float32 tensor tagged with the 'scalars' plugin), so that logging
    does not need the tensorboard package (tf.summary.scalar does)."""
    tf.summary.write(name, tf.constant(value, tf.float32), step=step,
                     metadata=_scalar_metadata())


def first_nonfinite(values):
    """(name, value) of the first NaN or infinite entry of `values` ({name: float}), or None."""
    for name, value in values.items():
        if not math.isfinite(value):
            return name, value
    return None


def diverged(iteration, name, value, unconfirmed, last_good, ckpt_dir):
    """TrainingDiverged for loss `name` = `value` at `iteration`.

    unconfirmed: the checkpoint holding the weights this loss was computed with (saved after
    the previous iteration, or resumed from), or None. It is moved aside (see `_set_aside`),
    so that --resume, --init-from and --weights on the folder do not pick it up. last_good:
    the newest checkpoint whose weights gave a finite loss, or None.
    """
    moved = ""
    if last_good and not Path(last_good + ".index").is_file():
        last_good = f"none ({last_good} was removed to keep --keep checkpoints)"
    if unconfirmed:
        aside = set_aside(unconfirmed, ckpt_dir)
        moved = (f" Checkpoint {Path(unconfirmed).name} holds the weights that gave this loss; "
                 f"moved to {aside}.")
    return TrainingDiverged(
        f"iteration {iteration}: loss {name} is {value}; training stopped.{moved} "
        f"Last good checkpoint: {last_good or 'none (no checkpoint known good yet)'}")


# ---------------------------------------------------------------------------- the loop

def _prepare_out_dir(config, chief=True):
    out = Path(config.out_dir)
    config_path = out / "config.json"
    ckpt_dir = out / "checkpoints"
    found = list_checkpoints(ckpt_dir)
    moved = None
    if config.resume:
        saved = read_run_config(out)
        if not found:
            raise ConfigError(f"{out}: nothing to resume: no checkpoint")
        if saved.command != config.command:
            raise ConfigError(f"{out}: a {saved.command} run cannot be resumed by {config.command}")
        diff = resume_mismatches(saved, config)
        if diff:
            raise ConfigError(f"{out}: --resume with settings that differ from the saved run: "
                              f"{', '.join(diff)} (see {config_path})")
        if not _same_folder(saved.out_dir, out):
            moved = f"run folder moved: was {saved.out_dir}, now {config.out_dir}"
    elif found:
        raise ConfigError(f"{out}: already holds checkpoints; pass --resume to continue it or "
                          "choose another output folder")
    if chief:
        (out / "images").mkdir(parents=True, exist_ok=True)
        write_text_atomic(config_path, config.to_json() + "\n")
    return out, ckpt_dir, found, moved


def _same_folder(a, b):
    """Whether paths `a` and `b` name the same existing folder, or the same path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def build_trainer(config, vgg=None, strategy=None):
    """The step object of a config (PretrainStep or AdversarialStep), models built after the
    seeds are set, on the replicas of `strategy` (None: one device)."""
    tf.keras.utils.set_random_seed(config.seed)
    if config.command == "pretrain":
        return PretrainStep(config, strategy)
    if vgg is None and config.vgg:
        from whitebox.model.vgg import VGG19Conv44
        vgg = VGG19Conv44.from_file(config.vgg, trust_pickle=config.trust_pickle)
    return AdversarialStep(config, vgg, strategy)


def _make_strategy(config):
    """(strategy or None, chief): the run's tf.distribute strategy, its replica count recorded
    in config.replicas, and whether this process writes the run's files."""
    strategy = distribute.make_strategy(config.strategy, config.devices, config.peer_wait)
    config.replicas = distribute.replicas(strategy)
    if config.batch_size % config.replicas:
        raise ConfigError(f"batch_size {config.batch_size} does not split evenly over "
                          f"{config.replicas} replicas")
    return strategy, distribute.is_chief(strategy)


def run(config, vgg=None, echo=True, progress=True):
    """Train with `config` (PretrainConfig or TrainConfig); returns the step object.

    The precision is settled first (precision.resolve_precision: one unsupported here falls
    back to fp32, with a line in the log) and config.json records the one used. Relative paths
    of the config are taken from the current folder; config.json records them absolute.
    Output folder: config.json, log.txt, train_log/ (TensorBoard), images/ (sample grids),
    checkpoints/ (tf.train.Checkpoint: generator, discriminators, both optimisers, iteration,
    colour-shift RNG; the batch draws depend only on seed and iteration). On a multi-worker
    run only the chief writes them; the other workers read the folder to resume.
    """
    config.validate()
    config.make_paths_absolute()
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    notes = []
    config.precision = resolve_precision(config.precision, warn=notes.append)
    if config.command == "train":
        config.xla = resolve_xla(config.xla, config.precision, warn=notes.append)
    if config.precision != "fp32":
        notes.append(f"precision {config.precision}: the networks compute in it; weights, Adam "
                     "slots, filters and losses stay float32")
        if config.command == "train":
            notes.append(f"VGG19 computes in {config.vgg_dtype_name()} "
                         f"(--vgg-precision {config.vgg_precision})")
    strategy, chief = _make_strategy(config)
    out, ckpt_dir, found, moved = _prepare_out_dir(config, chief)
    scratch = None if chief else Path(tempfile.mkdtemp(prefix="whitebox-worker-"))
    try:
        return _train(config, vgg, strategy, out, ckpt_dir, found, notes + [moved], scratch,
                      echo and chief, progress and chief)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _train(config, vgg, strategy, out, ckpt_dir, found, notes, scratch, echo, progress):
    """The loop of `run`. notes: lines for the log (None entries skipped). scratch: None on
    the chief; on another worker a temporary folder that takes its log and checkpoint writes
    (every worker takes part in a save)."""
    from tqdm import tqdm

    log = RunLog((scratch or out) / "log.txt", echo=echo)
    if config.replicas > 1:
        log(f"strategy {config.strategy}: {config.replicas} replicas, "
            f"{config.batch_size // config.replicas} images each")
    for note in notes:
        if note:
            log(note)
    with_cartoons = config.command == "train"
    lists, use_face, note = data_lib.load_lists(config.data_lists, with_cartoons)
    if note:
        log(note)
    sampler = data_lib.BatchSampler(lists, config.batch_size, config.patch_size, config.seed,
                                    use_face, with_cartoons, config.face_every)

    trainer = build_trainer(config, vgg, strategy)
    iteration = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(iteration=iteration, **trainer.checkpoint_objects())
    # The checkpoint whose weights have not yet given a finite loss, and the newest that has.
    unconfirmed = last_good = None
    if config.resume:
        unconfirmed = restore_newest(checkpoint, found, ckpt_dir, log.problem,
                                     update_state=scratch is None)
        older = [p for p in found[found.index(unconfirmed) + 1:]
                 if Path(p + ".index").is_file()]
        last_good = older[0] if older else None
        log(f"resumed from {unconfirmed} at iteration {int(iteration.numpy())}")
    elif config.init_from:
        prefix = load_generator(trainer.generator, config.init_from)
        log(f"generator initialised from {prefix}")
    elif config.command == "train":
        log("warning: no --init-from: the generator starts from random weights, "
            "not from a pre-trained one as the reference does")
    # Created after the resume, which rewrites the state file the manager reads.
    manager = tf.train.CheckpointManager(checkpoint, str(scratch or ckpt_dir),
                                         max_to_keep=config.keep_checkpoints,
                                         checkpoint_name="ckpt")

    start = int(iteration.numpy())
    writer = (tf.summary.create_file_writer(str(out / "train_log")) if scratch is None
              else tf.summary.create_noop_writer())
    dataset = sampler.dataset(start, config.iterations)
    bar = tqdm(total=config.iterations, initial=start, disable=not progress,
               dynamic_ncols=True, desc=config.command)
    i = start - 1
    try:
        for batch in dataset:
            i = int(batch[0].numpy())
            terms = trainer.iteration(*batch[1:])
            values = {k: float(v) for k, v in terms.items()}
            bad = first_nonfinite(values)
            if bad:
                if scratch is not None:
                    raise TrainingDiverged(f"iteration {i}: loss {bad[0]} is {bad[1]}; "
                                           "training stopped (the chief keeps the checkpoints)")
                raise diverged(i, *bad, unconfirmed, last_good, ckpt_dir)
            if unconfirmed:
                last_good, unconfirmed = unconfirmed, None
            iteration.assign(i + 1)
            with writer.as_default(step=i):
                for name in SCALARS:
                    if name in values:
                        write_scalar(name, values[name], i)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()
                             if k in ("g_loss_total", "d_loss_total", "recon_loss")})
            if (i + 1) % config.print_every == 0:
                ordered = [k for k in SCALARS if k in values]
                log(f"iter {i}: " + ", ".join(f"{k} {values[k]:.6g}" for k in ordered))
            if (i + 1) % config.sample_every == 0 and scratch is None:
                _write_samples(trainer, sampler, out / "images", i, use_face)
            if (i + 1) % config.save_every == 0 or i + 1 == config.iterations:
                path = manager.save(checkpoint_number=i + 1)
                unconfirmed = path
                writer.flush()
                log(f"iter {i}: checkpoint {path}")
    except tf.errors.OpError:
        if sampler.last_error is not None:
            raise sampler.last_error from None
        raise
    except KeyboardInterrupt:
        newest = unconfirmed or last_good
        raise KeyboardInterrupt(
            f"{config.command} stopped at iteration {i + 1}; "
            + (f"--resume continues from {newest}" if newest else "no checkpoint was saved yet")
        ) from None
    finally:
        bar.close()
        writer.flush()
    return trainer


def _write_samples(trainer, sampler, folder, i, use_face):
    """`<i>_<domain>_result.jpg` and `<i>_<domain>_photo.jpg` grids, as the reference names them."""
    for domain in (("face", "scenery") if use_face else ("scenery",)):
        photos, _ = sampler.sample_batch(i, domain)
        result = trainer.sample(tf.constant(photos)).numpy()
        write_atomic(folder / f"{i}_{domain}_result.jpg", image_grid(result))
        write_atomic(folder / f"{i}_{domain}_photo.jpg", image_grid(photos))
