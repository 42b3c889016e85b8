"""Loading generator weights: the authors' TF1 checkpoints by variable name, and our own
`tf.train.Checkpoint` files by object graph.

Accepted locations: a folder holding a `checkpoint` file or `*.index` files, or a checkpoint
prefix (`.../model-33999`, with or without `.index`).
"""
import os
from pathlib import Path

import tensorflow as tf

# The authors publish `model-33999`, but their `checkpoint` file also lists an unpublished
# `model-37499`: prefer the published prefix whenever a folder has it.
OFFICIAL_PREFIX = "model-33999"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


class CheckpointError(Exception):
    """A checkpoint that cannot be found or does not fit the model; the message says why."""


def resolve_prefix(path):
    """Map a folder or prefix to an existing checkpoint prefix (str), or raise CheckpointError."""
    path = Path(path)
    if path.is_dir():
        official = path / OFFICIAL_PREFIX
        if Path(str(official) + ".index").is_file():
            return str(official)
        latest = tf.train.latest_checkpoint(str(path))
        if latest and Path(latest + ".index").is_file():
            return latest
        indexes = sorted(path.glob("*.index"), key=os.path.getmtime)
        if indexes:
            return str(indexes[-1])[: -len(".index")]
        raise CheckpointError(f"{path}: no checkpoint here (no '*.index' file)")
    if path.suffix == ".index" and path.is_file():
        return str(path)[: -len(".index")]
    if Path(str(path) + ".index").is_file():
        return str(path)
    raise CheckpointError(f"{path}: no such checkpoint (neither a folder nor a prefix with .index)")


def _read_by_name(reader, named_variables, prefix):
    """Values for every variable from a name-keyed (TF1) checkpoint, or a listed error."""
    shapes = reader.get_variable_to_shape_map()
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
    return {name: reader.get_tensor(name) for name in named_variables}


def load_generator(generator, path):
    """Fill `generator` (network.Generator) from `path`; returns the prefix it read.

    TF1 checkpoints are matched by variable name (`generator/Conv/weights`, ...). Our own
    checkpoints (written by training through tf.train.Checkpoint with a `generator` attribute)
    are matched by object graph. Any missing or mis-shaped variable raises CheckpointError
    listing them; nothing is assigned then.
    """
    prefix = resolve_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as err:
        raise CheckpointError(f"{prefix}: unreadable checkpoint ({err.__class__.__name__})")
    named = generator.named_variables()
    if OBJECT_GRAPH_KEY in reader.get_variable_to_shape_map():
        _load_object_graph(generator, prefix, reader)
    else:
        for name, value in _read_by_name(reader, named, prefix).items():
            named[name].assign(value)
    return prefix


def _load_object_graph(generator, prefix, reader):
    """Restore from a tf.train.Checkpoint whose root has a `generator` attribute."""
    keys = reader.get_variable_to_shape_map()
    saved = {k for k in keys if k.startswith("generator/")}
    if not saved:
        raise CheckpointError(f"{prefix}: a TF2 checkpoint without a 'generator' object")
    status = tf.train.Checkpoint(generator=generator).read(prefix)
    try:
        status.assert_existing_objects_matched()
    except AssertionError as err:
        raise CheckpointError(f"{prefix}: checkpoint does not fit the generator: {err}")
    except ValueError as err:
        raise CheckpointError(f"{prefix}: checkpoint does not fit the generator: {err}")
    status.expect_partial()
