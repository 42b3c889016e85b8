import numpy as np
import tensorflow as tf

from whitebox.model.guided_filter import box_filter, guided_filter


def box_mean_numpy(x, r):
    """Window mean over valid pixels only (what box(x)/box(1) must equal), by explicit loops."""
    n, h, w, c = x.shape
    out = np.empty_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            win = x[:, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1]
            out[:, i, j] = win.mean(axis=(1, 2))
    return out


def guided_filter_numpy(p, q, r, eps):
    mp, mq = box_mean_numpy(p, r), box_mean_numpy(q, r)
    cov = box_mean_numpy(p * q, r) - mp * mq
    var = box_mean_numpy(p * p, r) - mp * mp
    a = cov / (var + eps)
    b = mq - a * mp
    return box_mean_numpy(a, r) * p + box_mean_numpy(b, r)


def test_box_filter_counts_zero_padding():
    x = np.ones((1, 6, 6, 2), np.float32)
    out = box_filter(tf.constant(x), 1).numpy()
    assert np.isclose(out[0, 0, 0, 0], 4 / 9)   # corner sees 4 of 9 pixels
    assert np.isclose(out[0, 0, 3, 1], 6 / 9)   # edge sees 6
    assert np.isclose(out[0, 3, 3, 0], 1.0)


def test_guided_filter_matches_numpy():
    rng = np.random.default_rng(0)
    p = rng.uniform(-1, 1, (2, 17, 23, 3))
    q = rng.uniform(-1, 1, (2, 17, 23, 3))
    for r, eps in [(1, 5e-3), (1, 1e-2), (5, 0.2)]:
        ours = guided_filter(tf.constant(p, tf.float32), tf.constant(q, tf.float32), r, eps)
        np.testing.assert_allclose(ours.numpy(), guided_filter_numpy(p, q, r, eps), atol=2e-4)


def test_guided_filter_is_per_channel():
    rng = np.random.default_rng(1)
    p = rng.uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    q = rng.uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    full = guided_filter(tf.constant(p), tf.constant(q), 1, 1e-2).numpy()
    q2 = q.copy()
    q2[..., 0] += 0.5
    changed = guided_filter(tf.constant(p), tf.constant(q2), 1, 1e-2).numpy()
    np.testing.assert_allclose(full[..., 1:], changed[..., 1:], atol=1e-6)
    assert np.abs(full[..., 0] - changed[..., 0]).max() > 0.1
