"""The guided filter of He et al., per channel, as the reference computes it.

Used by inference (photo-guided, r=1, eps=5e-3), by training (photo-guided, r=1, eps=1e-2) and by
the surface representation (self-guided, r=5, eps=0.2).
"""
import tensorflow as tf


def box_filter(x, r):
    """[N, H, W, C] sums over (2r+1)x(2r+1) windows, zero-padded, times 1/(2r+1)^2 (the
    padding counts; `guided_filter` divides by the box of ones)."""
    size = 2 * r + 1
    channels = x.shape[-1]
    kernel = tf.fill([size, size, channels, 1], tf.constant(1.0 / size**2, x.dtype))
    return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")


def guided_filter(guide, src, r, eps):
    """[N, H, W, C] `src` filtered per channel with the edges of `guide` (same shape):
    mean(A) * guide + mean(b), A = cov(guide, src) / (var(guide) + eps),
    b = mean(src) - A * mean(guide) over (2r+1)^2 windows.
    """
    shape = tf.shape(guide)
    count = box_filter(tf.ones([1, shape[1], shape[2], 1], guide.dtype), r)

    def mean(t):
        return box_filter(t, r) / count

    mean_guide = mean(guide)
    mean_src = mean(src)
    cov = mean(guide * src) - mean_guide * mean_src
    var = mean(guide * guide) - mean_guide * mean_guide
    a = cov / (var + eps)
    b = mean_src - a * mean_guide
    return mean(a) * guide + mean(b)
