"""Damaged checkpoint files: a one-line CheckpointError, nothing assigned, exit 2 from the CLIs."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import write_tf1_checkpoint
from whitebox.cli import cartoonize, export
from whitebox.model.checkpoints import (
    CheckpointError,
    list_checkpoints,
    load_generator,
    read_all,
)
from whitebox.model.network import Generator

DAMAGES = ("truncate", "flip", "zero", "random")


def damage(prefix, how):
    """Damage the checkpoint at `prefix` in place: its .data file truncated, two bytes flipped,
    zero-filled or replaced by random bytes."""
    data = next(Path(prefix).parent.glob(Path(prefix).name + ".data-*"))
    raw = bytearray(data.read_bytes())
    if how == "truncate":
        raw = raw[: len(raw) // 2]
    elif how == "flip":
        raw[len(raw) // 3] ^= 0xFF
        raw[2 * len(raw) // 3] ^= 0x01
    elif how == "zero":
        raw = bytearray(len(raw))
    elif how == "random":
        raw = bytearray(np.random.default_rng(0).integers(0, 256, len(raw), np.uint8).tobytes())
    data.write_bytes(bytes(raw))


def own_checkpoint(folder):
    """A training-style TF2 checkpoint with a generator; returns its prefix."""
    generator = Generator()
    return tf.train.Checkpoint(generator=generator, step=tf.Variable(3)).write(
        str(folder / "ckpt-1"))


def tf1_copy(folder, tf1_checkpoint):
    """The session's TF1 checkpoint (the conftest fixture) written again in `folder`, to be
    damaged; returns its prefix."""
    return write_tf1_checkpoint(folder / "model-33999", tf1_checkpoint[1])


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("kind", ["tf1", "own"])
def test_damaged_data_is_a_one_line_error_and_assigns_nothing(tmp_path, kind, how,
                                                              tf1_checkpoint):
    prefix = tf1_copy(tmp_path, tf1_checkpoint) if kind == "tf1" else own_checkpoint(tmp_path)
    damage(prefix, how)
    generator = Generator()
    before = [v.numpy().copy() for v in generator.trainable_variables]
    with pytest.raises(CheckpointError) as info:
        load_generator(generator, prefix)
    message = str(info.value)
    assert message.startswith(f"{prefix}: unreadable checkpoint: ") and "\n" not in message
    expected = "truncated file" if how == "truncate" else "checksum mismatch"
    assert expected in message
    for value, var in zip(before, generator.trainable_variables):
        np.testing.assert_array_equal(value, var.numpy())


def test_damaged_index_is_a_one_line_error(tmp_path):
    prefix = own_checkpoint(tmp_path)
    index = Path(prefix + ".index")
    index.write_bytes(index.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="damaged index file") as info:
        load_generator(Generator(), prefix)
    assert "\n" not in str(info.value)


def test_cartoonize_and_export_exit_2_with_one_line(tmp_path, capsys, tf1_checkpoint):
    prefix = tf1_copy(tmp_path, tf1_checkpoint)
    damage(prefix, "flip")
    (tmp_path / "in").mkdir()
    assert cartoonize.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                            "--weights", prefix, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cartoonize.py: error: {prefix}: unreadable checkpoint")
    assert err.count("\n") == 1
    assert export.main(["tflite", str(tmp_path / "m.tflite"), "--weights", prefix,
                        "--no-check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"export.py: error: {prefix}: unreadable checkpoint")
    assert err.count("\n") == 1 and not (tmp_path / "m.tflite").exists()


def test_list_checkpoints_sees_files_beyond_a_broken_state_file(tmp_path):
    own_checkpoint(tmp_path)
    for n in (2, 10):
        (tmp_path / f"ckpt-{n}.index").write_bytes(b"")
    (tmp_path / "ckpt-11.data-00000-of-00001").write_bytes(b"")  # its index deleted
    (tmp_path / "checkpoint").write_bytes(b"\x00garbled {{{")
    assert list_checkpoints(tmp_path) == [str(tmp_path / f"ckpt-{n}") for n in (11, 10, 2, 1)]
    with pytest.raises(CheckpointError, match="ckpt-11: unreadable checkpoint: no .index file"):
        read_all(str(tmp_path / "ckpt-11"))
