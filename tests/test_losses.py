"""Loss terms against independent NumPy computations on fixed tensors."""
import numpy as np

from tests.training_helpers import tiny_vgg_weights
from whitebox.model import losses


def _rand(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_lsgan_losses_match_numpy():
    real, fake = _rand([2, 4, 4, 1], 0), _rand([2, 4, 4, 1], 1)
    d_expected = 0.5 * (np.mean((real - 1) ** 2) + np.mean(fake ** 2))
    g_expected = np.mean((fake - 1) ** 2)
    np.testing.assert_allclose(losses.lsgan_d_loss(real, fake).numpy(), d_expected, rtol=1e-6)
    np.testing.assert_allclose(losses.lsgan_g_loss(fake).numpy(), g_expected, rtol=1e-6)


def test_total_variation_normalisation_on_non_square_image():
    image = _rand([2, 6, 10, 3], 2)
    tv_h = np.sum((image[:, 1:] - image[:, :-1]) ** 2) / image[:, 1:].size
    tv_w = np.sum((image[:, :, 1:] - image[:, :, :-1]) ** 2) / image[:, :, 1:].size
    expected = (tv_h + tv_w) / (3 * 6 * 10)
    np.testing.assert_allclose(losses.total_variation(image).numpy(), expected, rtol=1e-5)


def test_total_variation_uses_constant_three_for_one_channel():
    image = _rand([1, 4, 4, 1], 3)
    tv = (np.mean(np.diff(image, axis=1) ** 2) + np.mean(np.diff(image, axis=2) ** 2)) / 48
    np.testing.assert_allclose(losses.total_variation(image).numpy(), tv, rtol=1e-5)


def test_feature_l1_divides_mean_by_map_size():
    a, b = _rand([2, 3, 5, 7], 4), _rand([2, 3, 5, 7], 5)
    expected = np.abs(a - b).sum() / a.size / (3 * 5 * 7)
    np.testing.assert_allclose(losses.feature_l1(a, b).numpy(), expected, rtol=1e-5)


def test_vgg_content_loss_normalised_by_conv4_4_map():
    from whitebox.model.vgg import VGG19Conv44
    vgg = VGG19Conv44(tiny_vgg_weights(1))
    x, y = (np.random.default_rng(s).uniform(-1, 1, [2, 64, 48, 3]).astype(np.float32)
            for s in (6, 7))
    fx, fy = vgg(x).numpy(), vgg(y).numpy()
    assert fx.shape == (2, 8, 6, 8)          # 64/8, 48/8, conv4 width of the stand-in
    expected = np.mean(np.abs(fx - fy)) / (8 * 6 * 8)
    np.testing.assert_allclose(losses.feature_l1(fx, fy).numpy(), expected, rtol=1e-5)


def test_l1():
    a, b = _rand([2, 4, 4, 3], 8), _rand([2, 4, 4, 3], 9)
    np.testing.assert_allclose(losses.l1(a, b).numpy(), np.mean(np.abs(a - b)), rtol=1e-6)
