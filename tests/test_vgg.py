"""VGG19 to conv4_4: the three file formats, the pickle refusal, an independent forward pass."""
import h5py
import numpy as np
import pytest

from tests.training_helpers import TINY_CHANNELS, tiny_vgg_weights
from whitebox.model import vgg


def _write_npy(weights, path):
    table = {name: [k, b] for name, (k, b) in weights.items()}
    table["fc6"] = [np.zeros((2, 2), np.float32), np.zeros(2, np.float32)]  # extra, ignored
    np.save(path, table, allow_pickle=True)


def _write_keras_h5(weights, path):
    """The layout of Keras's vgg19 *_notop.h5 (legacy HDF5 weights format)."""
    with h5py.File(path, "w") as f:
        names = []
        for name, (kernel, bias) in weights.items():
            block, conv = name[4:].split("_")
            layer = f"block{block}_conv{conv}"
            names.append(layer.encode())
            group = f.create_group(layer)
            group.attrs["weight_names"] = [f"{layer}/kernel:0".encode(),
                                           f"{layer}/bias:0".encode()]
            group.create_dataset(f"{layer}/kernel:0", data=kernel)
            group.create_dataset(f"{layer}/bias:0", data=bias)
        f.attrs["layer_names"] = names


def _numpy_conv44(weights, image):
    """Independent NumPy forward pass (3x3 SAME convs via shifted sums, 2x2 max pools)."""
    x = (image.astype(np.float64) + 1) * 127.5 - np.array(vgg.VGG_MEAN_BGR)
    for i, name in enumerate(vgg.LAYERS):
        kernel, bias = weights[name]
        n, h, w, _ = x.shape
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        y = np.zeros((n, h, w, kernel.shape[3])) + bias
        for dy in range(3):
            for dx in range(3):
                y += padded[:, dy:dy + h, dx:dx + w] @ kernel[dy, dx]
        if name == "conv4_4":
            return y
        x = np.maximum(y, 0)
        if name in ("conv1_2", "conv2_2", "conv3_4"):
            x = x.reshape(n, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4))


def test_forward_matches_numpy():
    weights = tiny_vgg_weights(0)
    image = np.random.default_rng(0).uniform(-1, 1, [1, 16, 24, 3]).astype(np.float32)
    got = vgg.VGG19Conv44(weights)(image).numpy()
    expected = _numpy_conv44(weights, image)
    assert got.shape == (1, 2, 3, TINY_CHANNELS["conv4"])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3 * np.abs(expected).max())
    # pre-ReLU: the stand-in has negative conv4_4 values.
    assert (got < 0).any()


def test_npy_refused_without_trust_then_npz_conversion(tmp_path):
    weights = tiny_vgg_weights(1)
    npy, npz = tmp_path / "vgg19_no_fc.npy", tmp_path / "vgg19.npz"
    _write_npy(weights, npy)
    with pytest.raises(vgg.VGGWeightsError, match="pickle"):
        vgg.load_weights(npy)
    loaded = vgg.load_weights(npy, trust_pickle=True)
    vgg.convert_npy_to_npz(npy, npz, trust_pickle=True)
    from_npz = vgg.load_weights(npz)
    for name in vgg.LAYERS:
        np.testing.assert_array_equal(loaded[name][0], weights[name][0])
        np.testing.assert_array_equal(from_npz[name][1], weights[name][1])
    # The .npz is read without pickle.
    with np.load(npz, allow_pickle=False) as data:
        assert "conv4_4/kernel" in data


def test_keras_h5_gives_the_same_network(tmp_path):
    weights = tiny_vgg_weights(2)
    h5, npz = tmp_path / "notop.h5", tmp_path / "same.npz"
    _write_keras_h5(weights, h5)
    vgg.save_npz(weights, npz)
    image = np.random.default_rng(1).uniform(-1, 1, [1, 16, 16, 3]).astype(np.float32)
    a = vgg.VGG19Conv44.from_file(h5)(image).numpy()
    b = vgg.VGG19Conv44.from_file(npz)(image).numpy()
    np.testing.assert_array_equal(a, b)


def test_incomplete_or_unknown_files_are_named(tmp_path):
    weights = tiny_vgg_weights(3)
    del weights["conv3_3"]
    arrays = {f"{n}/{p}": a for n, (k, b) in weights.items() for p, a in (("kernel", k), ("bias", b))}
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(vgg.VGGWeightsError, match="conv3_3"):
        vgg.load_weights(tmp_path / "partial.npz")
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(vgg.VGGWeightsError, match="unknown VGG weights format"):
        vgg.load_weights(tmp_path / "w.bin")
    with pytest.raises(vgg.VGGWeightsError, match="no such"):
        vgg.load_weights(tmp_path / "absent.npz")
