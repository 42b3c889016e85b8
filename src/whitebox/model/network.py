"""The reference's generator (`unet_generator`) and discriminator (`disc_sn`) as `tf.Module`s.

Every variable is named as in the authors' TF1 checkpoint (`generator/Conv/weights`, ...), so
`checkpoints.py` maps that checkpoint by name.
"""
import tensorflow as tf

from whitebox.model import SN_MODES


class Conv2D(tf.Module):
    """slim's conv: `<scope>/weights` [k, k, in, out] (Glorot uniform), `<scope>/biases` [out],
    stride 1 or 2, 'SAME' padding."""

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


def run_in(dtype, network, x):
    """network(x) computed in `dtype`, the result float32; the layers cast their float32
    variables to the input's dtype."""
    return tf.cast(network(tf.cast(x, dtype)), tf.float32)


def lrelu(x):
    return tf.nn.leaky_relu(x, alpha=0.2)


def upsample2x(x):
    """[N, H, W, C] -> [N, 2H, 2W, C], bilinear as TF1's `resize_bilinear` (no half-pixel
    centres, unlike TF2's `tf.image.resize`): even rows copy, odd rows average two neighbours,
    the last odd row repeats the last input row."""
    size = 2 * tf.shape(x)[1:3]
    y = tf.raw_ops.ResizeBilinear(
        images=x, size=size, align_corners=False, half_pixel_centers=False)
    return tf.cast(y, x.dtype)


class Generator(tf.Module):
    """The reference's U-Net generator: 1,467,075 parameters at the defaults.

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


def _l2_normalize_all(t):
    """`t` over its Frobenius norm, floor 1e-12 on the squared norm."""
    return t * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(t)), 1e-12))


class SpectralConv2D(tf.Module):
    """A convolution whose kernel is divided by an estimate of its largest singular value.

    `<scope>/kernel` and `/bias` as Conv2D's, `<scope>/u` [1, out] (standard normal, not
    trainable). Each call runs one power iteration on the kernel as a [k*k*in, out] matrix W:
        v = normalise(u W^T),  u' = normalise(v W),  sigma = v W u'^T  (u', v without gradient)
    stores u', and convolves with W / sigma (W itself is never overwritten, unlike Keras's).
    """

    def __init__(self, scope, kernel_size, in_channels, out_channels, stride=1):
        super().__init__(name=None)
        self.scope = scope
        self.stride = stride
        shape = [kernel_size, kernel_size, in_channels, out_channels]
        self.kernel = tf.Variable(tf.keras.initializers.GlorotUniform()(shape),
                                  name=f"{scope}/kernel")
        self.bias = tf.Variable(tf.zeros([out_channels]), name=f"{scope}/bias")
        self.u = tf.Variable(tf.keras.initializers.RandomNormal(stddev=1.0)([1, out_channels]),
                             trainable=False, name=f"{scope}/u")

    def sigma_and_next_u(self):
        """(sigma [1, 1] differentiable w.r.t. the kernel, next u [1, out] without gradient)."""
        w = tf.reshape(self.kernel, [-1, self.kernel.shape[-1]])
        v = tf.stop_gradient(_l2_normalize_all(tf.matmul(self.u, w, transpose_b=True)))
        u_next = tf.stop_gradient(_l2_normalize_all(tf.matmul(v, w)))
        sigma = tf.matmul(tf.matmul(v, w), u_next, transpose_b=True)
        return sigma, u_next

    def normalized_kernel(self):
        """Advance u by one power iteration and return kernel / sigma (same shape as kernel)."""
        sigma, u_next = self.sigma_and_next_u()
        self.u.assign(u_next)
        return self.kernel / sigma[0, 0]

    def __call__(self, x):
        """As Conv2D's, advancing u once; the power iteration and kernel / sigma are float32."""
        kernel = tf.cast(self.normalized_kernel(), x.dtype)
        y = tf.nn.conv2d(x, kernel, strides=self.stride, padding="SAME")
        return y + tf.cast(self.bias, x.dtype)


class Discriminator(tf.Module):
    """The reference's `disc_sn` with patch=True, spectral norm on every conv.

    For k in 0, 1, 2: conv 3x3 stride 2 (channel*2^k) -> lrelu -> conv 3x3 -> lrelu; then conv
    1x1 -> 1, as `<name>/conv{k}_{1,2}/...` and `<name>/conv_out/...`. [N, H, W, in_channels]
    -> float32 patch logits [N, ceil(H/8), ceil(W/8), 1], computed in `compute_dtype`.
    `sn_mode` says how u advances over a step's real and fake batches:
      joint: the reference's two calls per graph run both start from the same stored u, which
             one call on the batch concatenation [real; fake] reproduces: u advances once.
      separate: two calls, real then fake (plain eager semantics): u advances twice.
    """

    def __init__(self, in_channels, channel=32, name="disc_gray", sn_mode="joint",
                 compute_dtype=tf.float32):
        super().__init__(name=None)
        self.compute_dtype = compute_dtype
        if sn_mode not in SN_MODES:
            raise ValueError(f"sn_mode must be one of {SN_MODES}, got {sn_mode!r}")
        self.scope = name
        self.sn_mode = sn_mode
        self.layers = []
        c_in = in_channels
        for k in range(3):
            c = channel * 2 ** k
            self.layers.append(SpectralConv2D(f"{name}/conv{k}_1", 3, c_in, c, stride=2))
            self.layers.append(SpectralConv2D(f"{name}/conv{k}_2", 3, c, c))
            c_in = c
        self.out = SpectralConv2D(f"{name}/conv_out", 1, c_in, 1)

    def __call__(self, x):
        x = tf.cast(x, self.compute_dtype)
        for layer in self.layers:
            x = lrelu(layer(x))
        return tf.cast(self.out(x), tf.float32)

    def logits(self, real, fake):
        """(real logits, fake logits) of one training step, u advanced as `sn_mode` says."""
        if self.sn_mode == "separate":
            return self(real), self(fake)
        both = self(tf.concat([real, fake], axis=0))
        n = tf.shape(real)[0]
        return both[:n], both[n:]

    def fake_logits(self, fake):
        """The fake logits of `logits(real, fake)`, u advanced as there, without the real ones."""
        if self.sn_mode == "separate":   # one power iteration on every layer
            for layer in self.layers + [self.out]:
                layer.normalized_kernel()
        return self(fake)

    def named_variables(self):
        """{reference name: tf.Variable} for kernels, biases and u vectors."""
        return {v.name.split(":")[0]: v for v in self.variables}
