import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import random_generator_values, write_tf1_checkpoint
from whitebox.model.checkpoints import CheckpointError, load_generator, resolve_prefix
from whitebox.model.network import Generator, lrelu, upsample2x


def direct_forward(values, x):
    """The generator written out with tf.nn ops straight from the checkpoint arrays."""
    def conv(name, t, stride=1):
        w, b = values[f"generator/{name}/weights"], values[f"generator/{name}/biases"]
        return tf.nn.conv2d(t, w, stride, "SAME") + b

    x0 = lrelu(conv("Conv", x))
    x1 = lrelu(conv("Conv_2", lrelu(conv("Conv_1", x0, 2))))
    x2 = lrelu(conv("Conv_4", lrelu(conv("Conv_3", x1, 2))))
    for i in range(4):
        x2 = x2 + conv(f"block_{i}/conv2", lrelu(conv(f"block_{i}/conv1", x2)))
    x2 = lrelu(conv("Conv_5", x2))
    x3 = lrelu(conv("Conv_7", lrelu(conv("Conv_6", upsample2x(x2) + x1))))
    x4 = lrelu(conv("Conv_8", upsample2x(x3) + x0))
    return conv("Conv_9", x4)


@pytest.mark.parametrize("form", ["folder", "prefix", "index"])
def test_tf1_checkpoint_loads_by_name(tf1_checkpoint, form):
    folder, values = tf1_checkpoint
    path = {"folder": folder, "prefix": folder / "model-33999",
            "index": folder / "model-33999.index"}[form]
    gen = Generator()
    assert resolve_prefix(path) == str(folder / "model-33999")
    load_generator(gen, path)
    x = tf.random.uniform([1, 24, 32, 3], -1, 1, seed=0)
    np.testing.assert_allclose(gen(x).numpy(), direct_forward(values, x).numpy(), atol=1e-5)


def test_folder_prefers_published_model_over_checkpoint_file(tmp_path):
    values = random_generator_values(seed=1)
    write_tf1_checkpoint(tmp_path / "model-33999", values)
    (tmp_path / "checkpoint").write_text(
        'model_checkpoint_path: "model-37499"\nall_model_checkpoint_paths: "model-37499"\n')
    assert resolve_prefix(tmp_path) == str(tmp_path / "model-33999")


def test_missing_and_misshaped_variables_are_listed(tmp_path):
    values = random_generator_values(seed=2)
    del values["generator/Conv_3/weights"]
    values["generator/Conv_5/biases"] = np.zeros([65], np.float32)
    values["generator/Conv_10/weights"] = np.zeros([1], np.float32)
    write_tf1_checkpoint(tmp_path / "model-1", values)
    gen = Generator()
    before = gen.named_variables()["generator/Conv/weights"].numpy().copy()
    with pytest.raises(CheckpointError) as info:
        load_generator(gen, tmp_path)
    message = str(info.value)
    assert "missing: generator/Conv_3/weights" in message
    assert "wrong shape: generator/Conv_5/biases [65]" in message
    assert "unexpected: generator/Conv_10/weights" in message
    np.testing.assert_array_equal(gen.named_variables()["generator/Conv/weights"].numpy(),
                                  before)


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        load_generator(Generator(), tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_generator(Generator(), tmp_path / "nothing")



@pytest.mark.parametrize("state", ['model_checkpoint_path: "model-5"\n', "garbled {{\n"],
                         ids=["names-a-missing-checkpoint", "garbled"])
def test_a_state_file_without_index_files_is_our_line_only(tmp_path, state):
    """TensorFlow logs "Couldn't match files" (or a ParseError) for such a folder; only the
    CheckpointError must say it."""
    import logging

    (tmp_path / "checkpoint").write_text(state)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        with pytest.raises(CheckpointError, match="no checkpoint here"):
            resolve_prefix(tmp_path)
    finally:
        tf.get_logger().removeHandler(handler)
    assert [record.getMessage() for record in records] == []

def test_own_tf2_checkpoint_round_trip(tmp_path):
    trained = Generator()
    for v in trained.trainable_variables:
        v.assign(tf.random.normal(v.shape, stddev=0.05, seed=4))
    optimizer_state = tf.Variable(3, name="step")
    prefix = tf.train.Checkpoint(generator=trained, step=optimizer_state).write(
        str(tmp_path / "ckpt-2"))
    loaded = Generator()
    load_generator(loaded, prefix)
    x = tf.random.uniform([1, 16, 16, 3], -1, 1, seed=1)
    np.testing.assert_allclose(loaded(x).numpy(), trained(x).numpy(), atol=1e-6)


def test_tf2_checkpoint_without_generator_is_refused(tmp_path):
    prefix = tf.train.Checkpoint(other=tf.Variable(1.0)).write(str(tmp_path / "ckpt-1"))
    with pytest.raises(CheckpointError, match="without a 'generator'"):
        load_generator(Generator(), prefix)
