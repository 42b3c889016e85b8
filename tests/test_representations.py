"""Surface, texture and structure representations."""
import numpy as np
import tensorflow as tf
from scipy import ndimage

from tests.training_helpers import install_fake_superpixel
from whitebox.model import representations


def _numpy_guided_self(x, r, eps):
    """Self-guided filter per channel with zero-padded box means corrected by the box of ones."""
    size = 2 * r + 1

    def box(t):
        return ndimage.uniform_filter(t, size=(1, size, size, 1), mode="constant", cval=0.0)

    n = box(np.ones_like(x[..., :1]))
    mean = box(x) / n
    var = box(x * x) / n - mean ** 2
    a = var / (var + eps)
    b = mean - a * mean
    return box(a) / n * x + box(b) / n


def test_surface_is_self_guided_filter_r5_eps02():
    x = np.random.default_rng(0).uniform(-1, 1, [2, 24, 20, 3])
    got = representations.surface(tf.constant(x, tf.float32)).numpy()
    np.testing.assert_allclose(got, _numpy_guided_self(x, 5, 0.2), atol=2e-5)


def test_color_shift_weights_stay_in_the_reference_ranges():
    rng = tf.random.Generator.from_seed(0)
    draws = np.stack([representations.draw_color_shift_weights(rng).numpy()
                      for _ in range(400)])
    for channel, (lo, hi) in enumerate(((0.014, 0.214), (0.487, 0.687), (0.199, 0.399))):
        assert draws[:, channel].min() >= lo and draws[:, channel].max() <= hi
        # The whole range is used, not a point or a narrower band.
        assert draws[:, channel].min() < lo + 0.01 and draws[:, channel].max() > hi - 0.01


def test_texture_is_weighted_grey_with_one_weight_set_for_both_images():
    a = np.random.default_rng(1).uniform(-1, 1, [2, 8, 8, 3]).astype(np.float32)
    b = np.random.default_rng(2).uniform(-1, 1, [2, 8, 8, 3]).astype(np.float32)
    rng = tf.random.Generator.from_seed(5)
    expected_w = representations.draw_color_shift_weights(tf.random.Generator.from_seed(5)).numpy()
    ga, gb = representations.texture(a, b, rng=rng)
    for image, gray in ((a, ga), (b, gb)):
        manual = (image @ expected_w) / expected_w.sum()
        assert gray.shape == (2, 8, 8, 1)
        np.testing.assert_allclose(gray.numpy()[..., 0], manual, rtol=1e-5, atol=1e-6)
    # Channel 0 is blue: with explicit weights (1, 0, 0) the output is the first channel.
    only_b, _ = representations.texture(a, b, weights=[1.0, 0.0, 0.0])
    np.testing.assert_allclose(only_b.numpy()[..., 0], a[..., 0])


def test_texture_draws_new_weights_on_every_call():
    x = np.random.default_rng(3).uniform(-1, 1, [1, 4, 4, 3]).astype(np.float32)
    rng = tf.random.Generator.from_seed(0)
    first, _ = representations.texture(x, x, rng=rng)
    second, _ = representations.texture(x, x, rng=rng)
    assert not np.allclose(first.numpy(), second.numpy())


def test_structure_goes_through_numpy_without_gradient(monkeypatch):
    calls = []
    install_fake_superpixel(monkeypatch, calls)
    x = tf.Variable(np.random.default_rng(4).uniform(-1, 1, [2, 8, 8, 3]).astype(np.float32))

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            s = representations.structure(x * 1.0, method="selective", n_jobs=2)
            loss = tf.reduce_sum(s)
        return s, tape.gradient(loss, x)

    s, grad = run()
    assert grad is None
    assert s.shape == (2, 8, 8, 3)
    assert len(calls) == 1 and calls[0][1] == "selective"
    np.testing.assert_array_equal(calls[0][0], x.numpy())
    np.testing.assert_array_equal(s.numpy(), np.round(x.numpy() * 2) / 2)
