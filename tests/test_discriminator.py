"""The spectral-norm discriminator: names, shapes, sigma, gradient through sigma, u handling."""
import numpy as np
import pytest
import tensorflow as tf

from whitebox.model.network import Discriminator, SpectralConv2D


def test_variable_names_follow_reference_scopes_and_shapes():
    disc = Discriminator(1, channel=32, name="disc_gray")
    names = disc.named_variables()
    expected = {f"disc_gray/conv{k}_{j}/{v}" for k in range(3) for j in (1, 2)
                for v in ("kernel", "bias", "u")}
    expected |= {f"disc_gray/conv_out/{v}" for v in ("kernel", "bias", "u")}
    assert set(names) == expected
    assert names["disc_gray/conv0_1/kernel"].shape == (3, 3, 1, 32)
    assert names["disc_gray/conv2_2/kernel"].shape == (3, 3, 128, 128)
    assert names["disc_gray/conv_out/kernel"].shape == (1, 1, 128, 1)
    assert names["disc_gray/conv1_1/u"].shape == (1, 64)
    assert not names["disc_gray/conv1_1/u"].trainable
    assert {v.name.split(":")[0] for v in disc.trainable_variables} == {
        n for n in expected if not n.endswith("/u")}
    logits = disc(tf.zeros([2, 32, 40, 1]))
    assert logits.shape == (2, 4, 5, 1)


def test_sigma_converges_to_largest_singular_value():
    tf.keras.utils.set_random_seed(1)
    layer = SpectralConv2D("s", 3, 4, 8)
    for _ in range(60):
        layer.normalized_kernel()
    sigma, _ = layer.sigma_and_next_u()
    w = layer.kernel.numpy().reshape(-1, 8)
    top = np.linalg.svd(w.astype(np.float64), compute_uv=False)[0]
    np.testing.assert_allclose(float(sigma[0, 0]), top, rtol=1e-3)
    # The normalised kernel then has spectral norm about 1.
    wn = layer.normalized_kernel().numpy().reshape(-1, 8)
    np.testing.assert_allclose(np.linalg.svd(wn, compute_uv=False)[0], 1.0, rtol=1e-3)


def test_kernel_never_overwritten_and_u_advances_once_per_call():
    layer = SpectralConv2D("s", 3, 3, 5)
    kernel0, u0 = layer.kernel.numpy().copy(), layer.u.numpy().copy()
    w = kernel0.reshape(-1, 5)
    v = u0 @ w.T
    v /= np.linalg.norm(v)
    u1 = v @ w
    u1 /= np.linalg.norm(u1)
    layer(tf.ones([1, 8, 8, 3]))
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel0)
    np.testing.assert_allclose(layer.u.numpy(), u1, rtol=1e-5, atol=1e-6)


def test_gradient_includes_the_term_through_sigma():
    """d/dW sum(C * W/sigma) with sigma = v W u^T (u, v constants) is
    C/sigma - sum(C*W)/sigma^2 * v^T u: compare with the tape, in float64 by hand."""
    tf.keras.utils.set_random_seed(2)
    layer = SpectralConv2D("s", 3, 2, 4)
    u0 = layer.u.numpy().astype(np.float64)
    w = layer.kernel.numpy().astype(np.float64).reshape(-1, 4)
    c = np.random.default_rng(0).normal(size=layer.kernel.shape)
    v = u0 @ w.T
    v /= np.linalg.norm(v)
    u1 = v @ w
    u1 /= np.linalg.norm(u1)
    sigma = (v @ w @ u1.T).item()
    cw = c.reshape(-1, 4)
    expected = cw / sigma - np.sum(cw * w) / sigma ** 2 * (v.T @ u1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.constant(c, tf.float32) * layer.normalized_kernel())
    grad = tape.gradient(loss, layer.kernel).numpy().reshape(-1, 4)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-6)
    # Differentiating only through the division (tfa/Keras style) would give C/sigma alone.
    assert np.abs(grad - cw / sigma).max() > 1e-3 * np.abs(cw / sigma).max()


def test_joint_call_equals_two_calls_from_the_same_u():
    tf.keras.utils.set_random_seed(3)
    disc = Discriminator(3, channel=4, name="disc_blur")
    real = tf.random.uniform([2, 16, 16, 3], -1, 1)
    fake = tf.random.uniform([2, 16, 16, 3], -1, 1)
    us = [v.numpy() for v in disc.variables if v.name.endswith("/u:0")]
    u_vars = [v for v in disc.variables if v.name.endswith("/u:0")]
    joint = disc(tf.concat([real, fake], 0)).numpy()
    u_after_joint = [v.numpy() for v in u_vars]
    for var, value in zip(u_vars, us):
        var.assign(value)
    r = disc(real).numpy()
    for var, value in zip(u_vars, us):
        var.assign(value)
    f = disc(fake).numpy()
    np.testing.assert_allclose(joint, np.concatenate([r, f]), rtol=1e-5, atol=1e-6)
    for a, b in zip(u_after_joint, [v.numpy() for v in u_vars]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # Two sequential calls advance u twice: a different state.
    disc(real)
    assert any(not np.allclose(a, v.numpy(), atol=1e-7) for a, v in zip(u_after_joint, u_vars))


def _u_values(disc):
    return [v.numpy().copy() for v in disc.variables if v.name.endswith("/u:0")]


def _set_u(disc, values):
    for var, value in zip([v for v in disc.variables if v.name.endswith("/u:0")], values):
        var.assign(value)


def test_logits_and_fake_logits_follow_the_sn_mode():
    tf.keras.utils.set_random_seed(4)
    real = tf.random.uniform([2, 16, 16, 3], -1, 1)
    fake = tf.random.uniform([2, 16, 16, 3], -1, 1)
    for mode, calls in (("joint", 1), ("separate", 2)):
        disc = Discriminator(3, channel=4, name="disc_blur", sn_mode=mode)
        u0 = _u_values(disc)
        real_logits, fake_logits = disc.logits(real, fake)
        u_step = _u_values(disc)
        # The same u after one call per advance; the logits as from the calls one by one.
        _set_u(disc, u0)
        expected_real = disc(real).numpy()
        if calls == 1:
            _set_u(disc, u0)
        expected_fake = disc(fake).numpy()
        for a, b in zip(u_step, _u_values(disc)):
            np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=mode)
        np.testing.assert_allclose(real_logits.numpy(), expected_real, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(fake_logits.numpy(), expected_fake, rtol=1e-5, atol=1e-6)
        # The generator step's fake logits alone: same values, same u afterwards.
        _set_u(disc, u0)
        alone = disc.fake_logits(fake).numpy()
        np.testing.assert_allclose(alone, expected_fake, rtol=1e-5, atol=1e-6, err_msg=mode)
        for a, b in zip(u_step, _u_values(disc)):
            np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=mode)


def test_unknown_sn_mode_is_refused():
    with pytest.raises(ValueError, match="sn_mode must be one of"):
        Discriminator(3, channel=4, sn_mode="both")
