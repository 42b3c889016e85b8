"""VGG19 up to conv4_4 (before its ReLU), frozen, for the content and structure losses.

Weights, {layer: (kernel [3, 3, in, out], bias [out])}, come from a local file:

* `.npz` (safe, this project's format): arrays `<layer>/kernel` and `<layer>/bias`.
* `.npy`: the reference's `vgg19_no_fc.npy`, a pickled dict {layer: [kernel, bias]}; a pickle
  can run code, so it is refused unless `trust_pickle=True`.
* `.h5`: Keras's `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, `block{b}_conv{c}` as
  `conv{b}_{c}`; also from the Caffe VGG19 like the .npy, but their equality is unverified.

Channel counts are read from the arrays, so small stand-in weights of the same layout work.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

from whitebox.base.errors import WeightsError, one_line
from whitebox.base.files import atomic_file

LAYERS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2",
          "conv3_1", "conv3_2", "conv3_3", "conv3_4",
          "conv4_1", "conv4_2", "conv4_3", "conv4_4")
# A 2x2 max pool follows the last conv of blocks 1, 2 and 3.
POOL_AFTER = ("conv1_2", "conv2_2", "conv3_4")
REAL_CHANNELS = {"conv1": 64, "conv2": 128, "conv3": 256, "conv4": 512}
# Caffe VGG means, B, G, R.
VGG_MEAN_BGR = (103.939, 116.779, 123.68)


class VGGWeightsError(WeightsError):
    """A VGG weights file that is refused, unreadable or incomplete; the message says why."""


def _check(weights, source):
    missing = [name for name in LAYERS if name not in weights]
    if missing:
        raise VGGWeightsError(f"{source}: missing VGG19 layers {', '.join(missing)}")
    in_ch = 3
    for name in LAYERS:
        kernel, bias = weights[name]
        if kernel.ndim != 4 or kernel.shape[:3] != (3, 3, in_ch) or bias.shape != kernel.shape[3:]:
            raise VGGWeightsError(f"{source}: layer {name} has kernel {kernel.shape} and bias "
                                  f"{bias.shape}; expected [3, 3, {in_ch}, out] and [out]")
        in_ch = kernel.shape[3]
    return weights


def load_npz(path):
    """The weights of this project's .npz (no pickle involved)."""
    with np.load(path, allow_pickle=False) as data:
        weights = {name: tuple(np.asarray(data[f"{name}/{part}"], np.float32)
                               for part in ("kernel", "bias"))
                   for name in LAYERS if f"{name}/kernel" in data and f"{name}/bias" in data}
    return _check(weights, path)


def load_npy(path, trust_pickle=False):
    """The weights of the reference's pickled `vgg19_no_fc.npy`, refused unless trust_pickle."""
    if not trust_pickle:
        raise VGGWeightsError(
            f"{path}: a .npy VGG file is a Python pickle, which can run code when loaded. "
            "Pass --trust-pickle if you trust its source, or convert it once with "
            "`train.py convert-vgg <in>.npy <out>.npz --trust-pickle` and use the .npz.")
    raw = np.load(path, allow_pickle=True, encoding="latin1")
    table = raw.item() if raw.dtype == object and raw.shape == () else None
    if not isinstance(table, dict):
        raise VGGWeightsError(f"{path}: not a pickled dict of VGG layers")
    weights = {name: (np.asarray(table[name][0], np.float32),
                      np.asarray(table[name][1], np.float32))
               for name in LAYERS if name in table}
    return _check(weights, path)


def load_h5(path):
    """The weights of Keras's VGG19 notop .h5."""
    import h5py  # a dependency of Keras, so present wherever TensorFlow is

    weights = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for name in LAYERS:
            keras_name = "block{}_conv{}".format(*name[4:].split("_"))
            if keras_name not in root:
                continue
            group = root[keras_name]
            names = [n.decode() if isinstance(n, bytes) else n
                     for n in group.attrs.get("weight_names", [])]
            if len(names) != 2:
                raise VGGWeightsError(f"{path}: layer {keras_name} has weight names {names}")
            weights[name] = tuple(np.asarray(group[n], np.float32) for n in names)
    return _check(weights, path)


def load_weights(path, trust_pickle=False):
    """The weights of a .npz, .npy (needs trust_pickle) or .h5 file."""
    path = str(path)
    if not Path(path).is_file():
        raise VGGWeightsError(f"{path}: no such VGG weights file")
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".npz":
            return load_npz(path)
        if suffix == ".npy":
            return load_npy(path, trust_pickle)
        if suffix in (".h5", ".hdf5"):
            return load_h5(path)
    except VGGWeightsError:
        raise
    except Exception as err:  # a corrupt file: name it and the reason
        raise VGGWeightsError(f"{path}: unreadable VGG weights ({err.__class__.__name__}: "
                              f"{one_line(err)})") from None
    raise VGGWeightsError(f"{path}: unknown VGG weights format {suffix!r} "
                          "(expected .npz, .npy or .h5)")


def save_npz(weights, path):
    """Write `weights` as this project's .npz, atomically."""
    arrays = {}
    for name in LAYERS:
        arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = weights[name]
    with atomic_file(path) as (f, _):
        np.savez(f, **arrays)


def convert_npy_to_npz(src, dst, trust_pickle=False):
    """Convert the pickled .npy once into a .npz that loads without pickle; VGGWeightsError for a
    bad `src`, or a `dst` that is `src` or unwritable."""
    if Path(src).suffix.lower() != ".npy":
        raise VGGWeightsError(f"{src}: convert-vgg reads the reference's pickled .npy")
    if Path(dst).exists() and Path(dst).resolve() == Path(src).resolve():
        raise VGGWeightsError(f"{dst}: is the input file; choose another output name")
    weights = load_weights(src, trust_pickle=trust_pickle)
    try:
        save_npz(weights, dst)
    except OSError as err:
        raise VGGWeightsError(f"{dst}: cannot write ({err.strerror or err})") from None


def random_weights(seed=0, channels=None):
    """Stand-in weights of the VGG19 layout (He-normal kernels, small biases) for tests and
    benches; channels: {block prefix: width}, e.g. {"conv1": 4, ...} (default the real ones)."""
    channels = channels or REAL_CHANNELS
    rng = np.random.default_rng(seed)
    weights, in_ch = {}, 3
    for name in LAYERS:
        out = channels[name[:5]]
        kernel = rng.normal(0, np.sqrt(2.0 / (9 * in_ch)), (3, 3, in_ch, out)).astype(np.float32)
        weights[name] = (kernel, rng.normal(0, 0.01, out).astype(np.float32))
        in_ch = out
    return weights


class VGG19Conv44(tf.Module):
    """Frozen VGG19 to conv4_4, pre-ReLU: [N, H, W, 3] BGR in [-1, 1], mapped to (x + 1) * 127.5
    minus the Caffe means -> [N, ceil(H/8), ceil(W/8), C4]. 3x3 SAME convs with ReLU between
    them, 2x2 stride-2 SAME max pools after POOL_AFTER. The weights are constants: never trained
    nor checkpointed.
    """

    def __init__(self, weights):
        super().__init__(name="vgg19")
        _check(weights, "VGG19Conv44")
        self._layers = [(name, tf.constant(weights[name][0]), tf.constant(weights[name][1]))
                        for name in LAYERS]
        self._mean = tf.constant(VGG_MEAN_BGR, tf.float32)

    @classmethod
    def from_file(cls, path, trust_pickle=False):
        return cls(load_weights(path, trust_pickle))

    def __call__(self, image, dtype=tf.float32):
        """float32 image -> float32 features; the mean is taken off in float32, the convolutions
        compute in `dtype`."""
        x = tf.cast((image + 1.0) * 127.5 - self._mean, dtype)
        for name, kernel, bias in self._layers:
            x = tf.nn.bias_add(tf.nn.conv2d(x, tf.cast(kernel, dtype), 1, "SAME"),
                               tf.cast(bias, dtype))
            if name == LAYERS[-1]:
                return tf.cast(x, tf.float32)
            x = tf.nn.relu(x)
            if name in POOL_AFTER:
                x = tf.nn.max_pool2d(x, 2, 2, "SAME")
