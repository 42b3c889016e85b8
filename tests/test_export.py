"""export.py: SavedModel signatures, TFLite with dynamic size, ONNX when installed."""
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

import cartoonize
import export
from whitebox import export as ex
from whitebox.checkpoints import load_generator
from whitebox.inference import Cartoonizer, resize_crop, to_uint8, to_unit_range
from whitebox.network import Generator


def photo(h, w, seed=0):
    """A smooth colour image with a little noise, like a small photo."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([120 + 90 * np.sin(x / 7), 120 + 90 * np.cos(y / 5),
                     120 + 60 * np.sin((x - y) / 9)], -1)
    noise = np.random.default_rng(seed).normal(0, 6, base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def module(tf1_checkpoint):
    gen = Generator()
    load_generator(gen, tf1_checkpoint[0])
    return ex.ExportModule(gen)


@pytest.fixture(scope="module")
def savedmodel(tmp_path_factory, tf1_checkpoint):
    out = tmp_path_factory.mktemp("export") / "sm"
    assert export.main(["savedmodel", str(out), "--weights", str(tf1_checkpoint[0]),
                        "--max-short-side", "48"]) == 0
    return tf.saved_model.load(str(out))


def test_uint8_signature_equals_the_cli_file_output(tmp_path, savedmodel, tf1_checkpoint):
    images = {"a.png": photo(40, 52), "b.png": photo(47, 36, seed=1)}
    for name, image in images.items():
        cv2.imwrite(str(tmp_path / name), image)
    out = tmp_path / "out"
    assert cartoonize.main(["-i", *(str(tmp_path / n) for n in images), "-o", str(out),
                            "--weights", str(tf1_checkpoint[0]), "-q",
                            "--max-short-side", "48"]) == 0
    for name, image in images.items():
        cartoon = savedmodel.signatures["serving_default"](image=tf.constant(image))["cartoon"]
        expected = cv2.imread(str(out / name))
        assert cartoon.dtype == tf.uint8 and cartoon.shape == expected.shape
        np.testing.assert_array_equal(cartoon.numpy(), expected)


def test_uint8_signature_resizes_like_opencv(savedmodel, module):
    """Short side 60 > 48: area resize to 48x(int(48 * 90 / 60) = 72), as cartoonize.py."""
    image = photo(60, 90, seed=2)
    cartoon = savedmodel.signatures["serving_default"](image=tf.constant(image))["cartoon"]
    assert tuple(cartoon.shape) == (48, 72, 3)
    ours = ex.tf_resize_crop(tf.constant(image), 48).numpy()
    theirs = resize_crop(image, 48)
    assert ours.shape == theirs.shape and np.abs(ours.astype(int) - theirs).max() <= 1


@pytest.mark.parametrize("shape", [(1001, 731), (900, 1500), (37, 50)])
def test_tf_resize_crop_matches_inter_area(shape):
    image = np.random.default_rng(3).integers(0, 256, (*shape, 3), np.uint8)
    ours = ex.tf_resize_crop(tf.constant(image)).numpy()
    theirs = resize_crop(image)
    assert ours.shape == theirs.shape
    diff = np.abs(ours.astype(int) - theirs)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_float_signature_matches_the_cartoonizer(savedmodel, module):
    image = photo(32, 40)
    x = to_unit_range(image)
    got = savedmodel.signatures["cartoonize_float"](photo=tf.constant(x[None]))["output"]
    want = Cartoonizer(module.generator).run_float(x)
    np.testing.assert_allclose(got.numpy()[0], want, atol=1e-5)


@pytest.mark.parametrize("quantize", ["none", "fp16"])
def test_tflite_round_trip_two_sizes(module, quantize):
    run = ex.tflite_runner(ex.tflite_bytes(module, quantize))
    for h, w in [(32, 40), (48, 32)]:
        x = to_unit_range(photo(h, w))[None]
        ref = ex.reference_output(module, photo(h, w))
        got = run(x)
        assert got.shape == (1, h, w, 3)
        assert np.abs(to_uint8(got).astype(int) - to_uint8(ref)).max() <= 1


def test_onnx_round_trip(module):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    run = ex.onnx_runner(ex.onnx_bytes(module))
    for h, w in [(32, 40), (48, 32)]:
        ref = ex.reference_output(module, photo(h, w))
        got = run(to_unit_range(photo(h, w))[None])
        assert np.abs(to_uint8(got).astype(int) - to_uint8(ref)).max() <= 1


def test_cli_tflite_prints_the_check(tmp_path, tf1_checkpoint, capsys):
    out = tmp_path / "m.tflite"
    assert export.main(["tflite", str(out), "--weights", str(tf1_checkpoint[0])]) == 0
    assert out.stat().st_size > 1_000_000
    assert "check tflite --quantize none: max difference" in capsys.readouterr().out


def test_missing_tf2onnx_is_a_clear_error(tmp_path, tf1_checkpoint, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    assert export.main(["onnx", str(tmp_path / "m.onnx"), "--weights",
                        str(tf1_checkpoint[0])]) == 2
    assert "ONNX export needs tf2onnx" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
