"""Loss terms of the reference's training: LSGAN, VGG-feature L1, total variation, L1.

Every function takes float tensors and returns a scalar tensor.
"""
import tensorflow as tf


def lsgan_d_loss(real_logits, fake_logits):
    """Least-squares GAN discriminator loss: 0.5*(mean((D(real)-1)^2) + mean(D(fake)^2))."""
    return 0.5 * (tf.reduce_mean(tf.square(real_logits - 1.0))
                  + tf.reduce_mean(tf.square(fake_logits)))


def lsgan_g_loss(fake_logits):
    """Least-squares GAN generator loss: mean((D(fake)-1)^2)."""
    return tf.reduce_mean(tf.square(fake_logits - 1.0))


def feature_l1(features_a, features_b):
    """mean|a - b| of [N, h, w, c] maps divided again by h*w*c, as the reference does (so the
    term is tiny and its weight, 200, large)."""
    h, w, c = features_a.shape[1:]
    return tf.reduce_mean(tf.abs(features_a - features_b)) / float(h * w * c)


def total_variation(image):
    """(mean of squared vertical differences + mean of squared horizontal ones) / (3*H*W).

    image: [N, H, W, C] with static H, W. The 3 is the reference's constant, whatever C is.
    """
    h, w = image.shape[1:3]
    tv_h = tf.reduce_mean(tf.square(image[:, 1:] - image[:, :-1]))
    tv_w = tf.reduce_mean(tf.square(image[:, :, 1:] - image[:, :, :-1]))
    return (tv_h + tv_w) / float(3 * h * w)


def l1(a, b):
    """mean|a - b|: the pre-training reconstruction loss."""
    return tf.reduce_mean(tf.abs(a - b))
