"""The cartoon generator of the reference (`unet_generator`), as a `tf.Module`.

Every variable is named exactly as in the authors' TF1 checkpoint (`generator/Conv/weights`,
`generator/block_0/conv1/biases`, ...), so `checkpoints.py` can map that checkpoint by name.
The same module serves inference and training.
"""
import tensorflow as tf

LEAKY_SLOPE = 0.2


class Conv2D(tf.Module):
    """A 2-D convolution with bias, stride 1 or 2, TF 'SAME' padding, Glorot-uniform kernel.

    Variables: `weights` [kh, kw, in, out] and `biases` [out], named `<scope>/weights` and
    `<scope>/biases` as slim named them.
    """

    def __init__(self, scope, kernel_size, in_channels, out_channels, stride=1):
        super().__init__(name=None)
        self.scope = scope
        self.stride = stride
        shape = [kernel_size, kernel_size, in_channels, out_channels]
        init = tf.keras.initializers.GlorotUniform()
        self.weights = tf.Variable(init(shape), name=f"{scope}/weights")
        self.biases = tf.Variable(tf.zeros([out_channels]), name=f"{scope}/biases")

    def __call__(self, x):
        """x: [N, H, W, in] float -> [N, ceil(H/stride), ceil(W/stride), out]."""
        kernel = tf.cast(self.weights, x.dtype)
        y = tf.nn.conv2d(x, kernel, strides=self.stride, padding="SAME")
        return tf.nn.bias_add(y, tf.cast(self.biases, x.dtype))


def lrelu(x):
    """Leaky ReLU with the reference's slope 0.2."""
    return tf.nn.leaky_relu(x, alpha=LEAKY_SLOPE)


def upsample2x(x):
    """Bilinear 2x resize as TF1's `resize_bilinear` did it (no half-pixel centres).

    x: [N, H, W, C] -> [N, 2H, 2W, C]. Even output rows copy input rows; odd rows average their
    two neighbours, and the last odd row repeats the last input row. TF2's `tf.image.resize`
    uses half-pixel centres and gives other numbers.
    """
    size = 2 * tf.shape(x)[1:3]
    y = tf.raw_ops.ResizeBilinear(
        images=x, size=size, align_corners=False, half_pixel_centers=False)
    return tf.cast(y, x.dtype)


class Generator(tf.Module):
    """The reference's U-Net generator (channel=32, num_blocks=4): 1,467,075 parameters.

    Input: [N, H, W, 3] BGR in [-1, 1], H and W divisible by 4. Output: [N, H, W, 3], unbounded
    (no tanh, no clip), meant to be read as BGR in about [-1, 1].
    """

    def __init__(self, channel=32, num_blocks=4, name="generator"):
        super().__init__(name=None)
        c = channel
        p = name + "/"
        self.head = [
            Conv2D(p + "Conv", 7, 3, c),
            Conv2D(p + "Conv_1", 3, c, c, stride=2),
            Conv2D(p + "Conv_2", 3, c, 2 * c),
            Conv2D(p + "Conv_3", 3, 2 * c, 2 * c, stride=2),
            Conv2D(p + "Conv_4", 3, 2 * c, 4 * c),
        ]
        self.blocks = [
            (Conv2D(f"{p}block_{i}/conv1", 3, 4 * c, 4 * c),
             Conv2D(f"{p}block_{i}/conv2", 3, 4 * c, 4 * c))
            for i in range(num_blocks)
        ]
        self.tail = [
            Conv2D(p + "Conv_5", 3, 4 * c, 2 * c),
            Conv2D(p + "Conv_6", 3, 2 * c, 2 * c),
            Conv2D(p + "Conv_7", 3, 2 * c, c),
            Conv2D(p + "Conv_8", 3, c, c),
            Conv2D(p + "Conv_9", 7, c, 3),
        ]

    def __call__(self, x):
        """x: [N, H, W, 3] BGR in [-1, 1] -> [N, H, W, 3] (see the class docstring)."""
        conv, conv_1, conv_2, conv_3, conv_4 = self.head
        conv_5, conv_6, conv_7, conv_8, conv_9 = self.tail

        x0 = lrelu(conv(x))
        x1 = lrelu(conv_2(lrelu(conv_1(x0))))
        x2 = lrelu(conv_4(lrelu(conv_3(x1))))
        for conv1, conv2 in self.blocks:
            x2 = x2 + conv2(lrelu(conv1(x2)))
        x2 = lrelu(conv_5(x2))

        x3 = lrelu(conv_6(upsample2x(x2) + x1))
        x3 = lrelu(conv_7(x3))
        x4 = lrelu(conv_8(upsample2x(x3) + x0))
        return conv_9(x4)

    def named_variables(self):
        """{checkpoint name: tf.Variable}, e.g. 'generator/Conv/weights'."""
        return {v.name.split(":")[0]: v for v in self.trainable_variables}
