import numpy as np
import tensorflow as tf

from tests.conftest import shared_path
from whitebox.model.network import Generator, upsample2x


def test_parameter_count_and_names_match_the_official_index():
    gen = Generator()
    named = gen.named_variables()
    assert sum(int(np.prod(v.shape)) for v in named.values()) == 1_467_075
    assert len(named) == 36
    folder = shared_path("weights", "whitebox_official")
    shapes = tf.train.load_checkpoint(str(folder / "model-33999")).get_variable_to_shape_map()
    assert {k: list(v) for k, v in shapes.items()} == {
        k: v.shape.as_list() for k, v in named.items()}


def test_names_and_shapes_without_shared():
    named = Generator().named_variables()
    assert named["generator/Conv/weights"].shape == (7, 7, 3, 32)
    assert named["generator/Conv_9/weights"].shape == (7, 7, 32, 3)
    assert named["generator/block_3/conv2/biases"].shape == (128,)
    assert all(v.trainable for v in named.values())


def reference_upsample(x):
    """TF1 resize_bilinear by its definition: source coordinate = out / 2, no half pixel."""
    n, h, w, c = x.shape
    out = np.empty((n, 2 * h, 2 * w, c), np.float64)
    for i in range(2 * h):
        y = i / 2
        y0, fy = int(np.floor(y)), y - np.floor(y)
        y1 = min(y0 + 1, h - 1)
        for j in range(2 * w):
            xx = j / 2
            x0, fx = int(np.floor(xx)), xx - np.floor(xx)
            x1 = min(x0 + 1, w - 1)
            top = x[:, y0, x0] * (1 - fx) + x[:, y0, x1] * fx
            bottom = x[:, y1, x0] * (1 - fx) + x[:, y1, x1] * fx
            out[:, i, j] = top * (1 - fy) + bottom * fy
    return out


def test_upsample_matches_legacy_definition_not_half_pixel():
    x = np.random.default_rng(1).standard_normal((2, 5, 7, 3)).astype(np.float32)
    ours = upsample2x(tf.constant(x)).numpy()
    np.testing.assert_allclose(ours, reference_upsample(x), atol=1e-6)
    half_pixel = tf.image.resize(x, (10, 14), method="bilinear").numpy()
    assert np.abs(half_pixel - ours).max() > 1e-2


def test_generator_shape_and_dependence_on_input():
    gen = Generator()
    x = tf.random.uniform([2, 32, 48, 3], -1, 1, seed=3)
    y = gen(x)
    assert y.shape == (2, 32, 48, 3)
    assert not np.allclose(y[0].numpy(), y[1].numpy())
