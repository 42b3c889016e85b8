"""Dynamic loss scaling for fp16 training (float16 gradients below about 6e-8 flush to zero), as
Keras's LossScaleOptimizer keeps it: the loss times `scale` goes backward, the gradients are
divided by it; a non-finite step is skipped and halves the scale (not below 1), `growth_interval`
finite ones in a row double it.
"""
import tensorflow as tf

INITIAL_SCALE = 2.0 ** 15
GROWTH_INTERVAL = 2000


def all_finite(tensors):
    """Boolean scalar: whether every element of every tensor is finite."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


class DynamicLossScale(tf.Module):
    """`scale` (float32 scalar variable) and `good_steps` (finite steps since the last change)."""

    def __init__(self, initial=INITIAL_SCALE, growth_interval=GROWTH_INTERVAL,
                 name="loss_scale"):
        super().__init__(name=name)
        self.growth_interval = growth_interval
        self.scale = tf.Variable(initial, dtype=tf.float32, trainable=False)
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False)

    def update(self, finite):
        """After a step (tf.where, not tf.cond: it runs alike in a replica context)."""
        good = tf.where(finite, self.good_steps + 1, tf.constant(0, tf.int64))
        grow = good >= self.growth_interval
        scale = self.scale
        self.scale.assign(tf.where(finite, tf.where(grow, scale * 2.0, scale),
                                   tf.maximum(scale / 2.0, 1.0)))
        self.good_steps.assign(tf.where(grow, tf.constant(0, tf.int64), good))
