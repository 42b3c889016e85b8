"""A training run's folder: config.json, log.txt, train_log/ (TensorBoard scalars), images/
(sample grids) and checkpoints/, and which checkpoint is known good.

On a multi-worker run only the chief writes it; another worker reads it only to resume, and
its log and its part in each checkpoint save go to a temporary folder, removed on close.
"""
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.framework.summary_pb2 import SummaryMetadata

from whitebox.base.errors import Interrupted, WhiteboxError
from whitebox.base.files import write_text_atomic
from whitebox.base.image_io import to_uint8, write_atomic
from whitebox.model.checkpoints import (
    indexed,
    list_checkpoints,
    restore_newest,
    set_aside,
)
from whitebox.train.config import ConfigError, read_run_config, resume_mismatches

# The reference's TensorBoard scalar names, in the order it declares them.
SCALARS = ("tv_loss", "photo_loss", "superpixel_loss", "recon_loss", "d_loss_gray",
           "g_loss_gray", "d_loss_blur", "g_loss_blur", "d_loss_total", "g_loss_total")
# TensorBoard's own scalar tag: tf.summary.write with it needs no tensorboard package.
_SCALAR_METADATA = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))


class TrainingDiverged(WhiteboxError):
    """A loss became NaN or infinite (exit 3)."""
    exit_code = 3


def image_grid(batch, columns=4, max_images=16):
    """uint8 BGR grid of up to `max_images` of a [N, H, W, 3] batch in rows of `columns` (the
    reference's 4x4 at batch 16), missing cells black."""
    images = to_uint8(batch[:max_images])
    n, h, w, c = images.shape
    grid = np.zeros((math.ceil(n / columns) * h, columns * w, c), np.uint8)
    for k in range(n):
        r, col = divmod(k, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[k]
    return grid


class RunLog:
    """Lines to a log file, each also given to `echo(line, problem)` when there is one
    (`problem`: True for the lines of `problem`)."""

    def __init__(self, path, echo=None):
        self.path = path
        self.echo = echo

    def __call__(self, line):
        self._write(line, False)

    def problem(self, line):
        self._write(line, True)

    def _write(self, line, problem):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.echo:
            self.echo(line, problem)


def _check_folder(config):
    """(the run folder's checkpoints, a note if it moved, else None); ConfigError when a new run
    would mix with saved checkpoints or a resume does not fit."""
    out = Path(config.out_dir)
    found = list_checkpoints(out / "checkpoints")
    if not config.resume:
        if found:
            raise ConfigError(f"{out}: already holds checkpoints; pass --resume to continue it "
                              "or choose another output folder")
        return found, None
    saved = read_run_config(out)
    if not found:
        raise ConfigError(f"{out}: nothing to resume: no checkpoint")
    if saved.command != config.command:
        raise ConfigError(f"{out}: a {saved.command} run cannot be resumed by {config.command}")
    diff = resume_mismatches(saved, config)
    if diff:
        raise ConfigError(f"{out}: --resume with settings that differ from the saved run: "
                          f"{', '.join(diff)} (see {out / 'config.json'})")
    if not _same_folder(saved.out_dir, out):
        return found, f"run folder moved: was {saved.out_dir}, now {config.out_dir}"
    return found, None


def _same_folder(a, b):
    """Whether paths `a` and `b` name the same existing folder, or the same path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


class RunFolder:
    """The folder of a run of `config`, written by the chief; notes: lines for the log. A
    checkpoint is confirmed by a finite loss from its weights: `unconfirmed` is the one that has
    not given one yet (resumed from, or the newest saved), `last_good` the newest that has.
    """

    def __init__(self, config, chief=True, echo=None, notes=()):
        self.config, self.chief = config, chief
        self.out = Path(config.out_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.found, moved = _check_folder(config)
        self.unconfirmed = self.last_good = None
        if chief:
            (self.out / "images").mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.out / "config.json", config.to_json() + "\n")
            self.writer = tf.summary.create_file_writer(str(self.out / "train_log"))
        else:
            self.writer = tf.summary.create_noop_writer()
        self.scratch = None if chief else Path(tempfile.mkdtemp(prefix="whitebox-worker-"))
        self.log = RunLog((self.scratch or self.out) / "log.txt", echo=echo if chief else None)
        for line in (*notes, moved):
            if line:
                self.log(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.writer.flush()
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def attach(self, objects):
        """Checkpoint `objects` ({name: trackable}) and the iteration count, restored on a
        resume; returns the next iteration."""
        self.iteration = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(iteration=self.iteration, **objects)
        if self.config.resume:
            found = self.found
            self.unconfirmed = restore_newest(self.checkpoint, found, self.ckpt_dir,
                                              self.log.problem, update_state=self.chief)
            older = [p for p in found[found.index(self.unconfirmed) + 1:] if indexed(p)]
            self.last_good = older[0] if older else None
            self.log(f"resumed from {self.unconfirmed} at iteration {int(self.iteration)}")
        # Made after the resume, which rewrites the state file the manager reads.
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(self.scratch or self.ckpt_dir),
            max_to_keep=self.config.keep_checkpoints, checkpoint_name="ckpt")
        return int(self.iteration)

    def record(self, i, values):
        """Losses {name: float} of iteration `i` to TensorBoard and the log, confirming their
        checkpoint; TrainingDiverged at a non-finite one."""
        for name, value in values.items():
            if not math.isfinite(value):
                raise self._diverged(f"iteration {i}: loss {name} is {value}; training stopped")
        if self.unconfirmed:
            self.last_good, self.unconfirmed = self.unconfirmed, None
        ordered = [k for k in SCALARS if k in values]
        with self.writer.as_default(step=i):
            for name in ordered:
                tf.summary.write(name, tf.constant(values[name], tf.float32), step=i,
                                 metadata=_SCALAR_METADATA)
        if (i + 1) % self.config.print_every == 0:
            self.log(f"iter {i}: " + ", ".join(f"{k} {values[k]:.6g}" for k in ordered))

    def _diverged(self, stop):
        """TrainingDiverged saying `stop`; the unconfirmed checkpoint (its weights gave the loss)
        is set aside from --resume, --init-from and --weights."""
        if not self.chief:
            return TrainingDiverged(f"{stop} (the chief keeps the checkpoints)")
        last_good, moved = self.last_good, ""
        if last_good and not indexed(last_good):
            last_good = f"none ({last_good} was removed to keep --keep checkpoints)"
        if self.unconfirmed:
            aside = set_aside(self.unconfirmed, self.ckpt_dir)
            moved = (f" Checkpoint {Path(self.unconfirmed).name} holds the weights that gave "
                     f"this loss; moved to {aside}.")
        return TrainingDiverged(f"{stop}.{moved} Last good checkpoint: "
                                f"{last_good or 'none (no checkpoint known good yet)'}")

    def save(self, i):
        """A checkpoint of the state after iteration `i`."""
        self.iteration.assign(i + 1)
        self.unconfirmed = self.manager.save(checkpoint_number=i + 1)
        self.writer.flush()
        self.log(f"iter {i}: checkpoint {self.unconfirmed}")

    def write_samples(self, i, trainer, sampler):
        """The chief's images/<i>_<domain>_result.jpg and _photo.jpg, the reference's names."""
        if not self.chief:
            return
        for domain in (("face", "scenery") if sampler.use_face else ("scenery",)):
            photos, _ = sampler.sample_batch(i, domain)
            result = trainer.sample(tf.constant(photos)).numpy()
            write_atomic(self.out / "images" / f"{i}_{domain}_result.jpg", image_grid(result))
            write_atomic(self.out / "images" / f"{i}_{domain}_photo.jpg", image_grid(photos))

    def interrupted(self, i):
        """Interrupted (Ctrl-C) before iteration `i`, saying where --resume continues."""
        newest = self.unconfirmed or self.last_good
        return Interrupted(
            f"{self.config.command} stopped at iteration {i}; "
            + (f"--resume continues from {newest}" if newest else "no checkpoint was saved yet"))
