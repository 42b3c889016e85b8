"""The paper's three white-box representations of [N, H, W, 3] BGR float32 in about [-1, 1]:
surface (self-guided filter), texture (random colour shift to grey), structure (superpixels)."""
import importlib

import tensorflow as tf

from whitebox.model.guided_filter import guided_filter

SURFACE_RADIUS = 5
SURFACE_EPS = 2e-1

# Uniform ranges of the colour-shift weights, channel order B, G, R (utils.color_shift).
COLOR_SHIFT_RANGES = ((0.014, 0.214), (0.487, 0.687), (0.199, 0.399))


def surface(image):
    """gf(image, image, r=5, eps=0.2)."""
    return guided_filter(image, image, SURFACE_RADIUS, SURFACE_EPS)


def draw_color_shift_weights(rng):
    """[3] weights (wb, wg, wr) in COLOR_SHIFT_RANGES from tf.random.Generator `rng`."""
    lo = tf.constant([r[0] for r in COLOR_SHIFT_RANGES], tf.float32)
    hi = tf.constant([r[1] for r in COLOR_SHIFT_RANGES], tf.float32)
    return lo + (hi - lo) * rng.uniform([3], dtype=tf.float32)


def texture(image_a, image_b, rng=None, weights=None):
    """Two [N, H, W, 1] (wb*B + wg*G + wr*R) / (wb + wg + wr) of BGR batches, with ONE set of
    weights: `weights`, else drawn from `rng`."""
    if weights is None:
        weights = draw_color_shift_weights(rng)
    weights = tf.cast(weights, image_a.dtype)
    w = tf.reshape(weights, [1, 1, 1, 3])
    total = tf.reduce_sum(weights)

    def gray(image):
        return tf.reduce_sum(image * w, axis=-1, keepdims=True) / total

    return gray(image_a), gray(image_b)


@tf.autograph.experimental.do_not_convert
def _superpixel_module():
    # Imported on first use so that the rest of this module works without scikit-image.
    return importlib.import_module("whitebox.model.superpixel")


def structure(image, method="slic", n_jobs=None, seg_num=200):
    """`superpixel.superpixel_batch` of `image` on the host, without gradient (a target, as the
    reference feeds it through a placeholder)."""
    module = _superpixel_module()
    target = tf.stop_gradient(image)

    def run(batch):
        return module.superpixel_batch(batch, method=method, n_jobs=n_jobs,
                                       seg_num=seg_num).astype("float32")

    out = tf.numpy_function(run, [target], tf.float32, stateful=False, name="superpixel")
    out.set_shape(image.shape)
    return out
