"""Checkpoints: the generator's weights from the authors' TF1 checkpoints (by variable name) or
ours (`tf.train.Checkpoint`, by object graph); a run's checkpoint folder, read and restored.

A location is a folder holding a `checkpoint` file or `*.index` files, or a prefix
(`.../model-33999`, with or without `.index`).
"""
import json
import logging
import os
import re
from pathlib import Path

import tensorflow as tf

from whitebox.base.errors import WeightsError, one_line
from whitebox.base.files import write_text_atomic

# The authors publish `model-33999`, but their `checkpoint` file also lists an unpublished
# `model-37499`: prefer the published prefix whenever a folder has it.
OFFICIAL_PREFIX = "model-33999"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


class CheckpointError(WeightsError):
    """A checkpoint that cannot be found or does not fit the model; the message says why."""


def indexed(prefix):
    """Whether checkpoint `prefix` has its .index file."""
    return Path(str(prefix) + ".index").is_file()


def checkpoint_state(folder):
    """The `checkpoint` state file of `folder` (paths absolute), or None when missing or garbled,
    without TensorFlow's log lines (callers say why)."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return tf.train.get_checkpoint_state(str(folder))
    except Exception:  # a garbled state file: the index files alone say what is here
        return None
    finally:
        logger.setLevel(level)


def resolve_prefix(path):
    """Map a folder or prefix to an existing checkpoint prefix (str), or raise CheckpointError."""
    path = Path(path)
    if path.is_dir():
        official = path / OFFICIAL_PREFIX
        if indexed(official):
            return str(official)
        state = checkpoint_state(path)
        latest = state.model_checkpoint_path if state else None
        if latest and indexed(latest):
            return latest
        indexes = sorted(path.glob("*.index"), key=os.path.getmtime)
        if indexes:
            return str(indexes[-1])[: -len(".index")]
        raise CheckpointError(f"{path}: no checkpoint here (no '*.index' file)")
    if path.suffix == ".index" and path.is_file():
        return str(path)[: -len(".index")]
    if indexed(path):
        return str(path)
    raise CheckpointError(f"{path}: no such checkpoint (neither a folder nor a prefix with .index)")


def _read_by_name(values, named_variables, prefix):
    """{name: array} for every variable from `values` (`read_all` of a TF1 checkpoint), or a
    CheckpointError listing what does not fit."""
    shapes = {name: value.shape for name, value in values.items()}
    missing, misshaped = [], []
    for name, var in named_variables.items():
        if name not in shapes:
            missing.append(name)
        elif list(shapes[name]) != var.shape.as_list():
            misshaped.append(f"{name} {list(shapes[name])} != expected {var.shape.as_list()}")
    if missing or misshaped:
        lines = [f"{prefix}: checkpoint does not fit the generator"]
        lines += [f"  missing: {n}" for n in missing]
        lines += [f"  wrong shape: {m}" for m in misshaped]
        unexpected = sorted(n for n in shapes if n.startswith("generator/")
                            and n not in named_variables)
        lines += [f"  unexpected: {n}" for n in unexpected]
        raise CheckpointError("\n".join(lines))
    return {name: values[name] for name in named_variables}


def _reason(err):
    """One line saying why reading a checkpoint failed."""
    text = str(err)
    if "hecksum does not match" in text:
        return "damaged data (checksum mismatch)"
    if "Read less bytes than requested" in text or "truncated" in text.lower():
        return "truncated file"
    if "sstable" in text or "Perhaps the file is corrupt" in text:
        return "damaged index file"
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).strip()
    return f"{err.__class__.__name__}: {one_line(text)[:200]}" if text else type(err).__name__


def read_all(prefix):
    """{key: array} of every tensor under `prefix`, each checked against the index's checksum:
    a truncated, zero-filled or altered file raises CheckpointError saying why."""
    if not indexed(prefix):
        raise CheckpointError(f"{prefix}: unreadable checkpoint: no .index file")
    # Whatever reading raises (OpError, IndexError from a short file, a protobuf error from a
    # garbled index) means the files are unreadable.
    try:
        reader = tf.train.load_checkpoint(prefix)
        return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
    except Exception as err:
        raise CheckpointError(f"{prefix}: unreadable checkpoint: {_reason(err)}") from None


def checkpoint_number(prefix):
    """The N of a `.../name-N` prefix, or -1 when it has none."""
    match = re.search(r"-(\d+)$", str(prefix))
    return int(match.group(1)) if match else -1


def list_checkpoints(folder):
    """Prefixes of the checkpoints in `folder`, newest first, from the files and the state file
    (a garbled state file hides none; one whose index is gone fails to read, saying so)."""
    folder = Path(folder)
    prefixes = {str(p)[: -len(".index")] for p in folder.glob("*.index") if p.is_file()}
    prefixes |= {str(p).rsplit(".data-", 1)[0] for p in folder.glob("*.data-*-of-*")
                 if p.is_file()}
    state = checkpoint_state(folder)
    if state is not None:
        for path in state.all_model_checkpoint_paths:
            path = Path(path) if Path(path).is_absolute() else folder / path
            if path.parent == folder:
                prefixes.add(str(path))
    return sorted(prefixes, key=lambda p: (checkpoint_number(p), p), reverse=True)


def load_generator(generator, path):
    """Fill `generator` from `path` and return the prefix read; CheckpointError (nothing
    assigned) for a missing or mis-shaped variable or a damaged file."""
    prefix = resolve_prefix(path)
    values = read_all(prefix)
    named = generator.named_variables()
    if OBJECT_GRAPH_KEY in values:
        if not any(key.startswith("generator/") for key in values):
            raise CheckpointError(f"{prefix}: a TF2 checkpoint without a 'generator' object")
        _load_object_graph(generator, prefix)
    else:
        for name, value in _read_by_name(values, named, prefix).items():
            named[name].assign(value)
    return prefix


def _load_object_graph(generator, prefix):
    """Restore from a tf.train.Checkpoint with a `generator`: read into a fresh generator, then
    copied into `generator` once the whole read has succeeded and matched."""
    from whitebox.model.network import Generator

    fresh = Generator(channel=generator.head[0].weights.shape[-1],
                      num_blocks=len(generator.blocks))
    try:
        status = tf.train.Checkpoint(generator=fresh).read(prefix)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as err:
        raise CheckpointError(f"{prefix}: checkpoint does not fit the generator: "
                              f"{_reason(err)}") from None
    except Exception as err:  # the files changed or broke since read_all checked them
        raise CheckpointError(f"{prefix}: unreadable checkpoint: {_reason(err)}") from None
    status.expect_partial()
    for target, value in zip(generator.trainable_variables, fresh.trainable_variables):
        target.assign(value)


def write_state(folder, prefixes):
    """Rewrite `folder`'s state file to list `prefixes` (oldest first) as CheckpointManager
    does, so that its --keep limit counts them; removed when there are none."""
    state = Path(folder) / "checkpoint"
    if not prefixes:
        state.unlink(missing_ok=True)
        return
    names = [json.dumps(Path(p).name) for p in prefixes]
    lines = [f"model_checkpoint_path: {names[-1]}"]
    lines += [f"all_model_checkpoint_paths: {name}" for name in names]
    times = [os.path.getmtime(str(p) + ".index") for p in prefixes]
    lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in times]
    lines.append(f"last_preserved_timestamp: {min(times) - 1.0!r}")
    write_text_atomic(state, "\n".join(lines) + "\n")


def restore_newest(checkpoint, prefixes, ckpt_dir, log, update_state=True):
    """Restore `checkpoint` from the newest of `prefixes` (newest first) that reads fully and
    fits, `log` getting a line per one skipped; returns its prefix, which with `update_state`
    `ckpt_dir`'s state file then lists with the older ones. Every tensor is checked first; a
    restore failing part way is overwritten by the next that succeeds, or stops the run.
    """
    for prefix in prefixes:
        try:
            read_all(prefix)
            try:
                checkpoint.restore(prefix).assert_existing_objects_matched()
            except Exception as err:  # files changed since read_all, or another model's
                raise CheckpointError(f"{prefix}: cannot be restored ({_reason(err)})") from None
        except CheckpointError as err:
            log(f"resume: skipped {err}")
            continue
        if update_state:
            older = [p for p in prefixes if checkpoint_number(p) <= checkpoint_number(prefix)]
            write_state(ckpt_dir, [p for p in older if indexed(p)][::-1])
        return prefix
    raise CheckpointError(f"{ckpt_dir}: none of its {len(prefixes)} checkpoint(s) could be "
                          "restored (the reasons are above)")


def set_aside(prefix, ckpt_dir):
    """Move checkpoint `prefix` into `ckpt_dir`/diverged/, out of the state file; returns that
    folder."""
    aside = Path(ckpt_dir) / "diverged"
    aside.mkdir(exist_ok=True)
    for path in Path(ckpt_dir).glob(Path(prefix).name + ".*"):
        path.replace(aside / path.name)
    write_state(ckpt_dir, [p for p in list_checkpoints(ckpt_dir) if indexed(p)][::-1])
    return aside
