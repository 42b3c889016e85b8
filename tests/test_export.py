"""export.py: SavedModel signatures, TFLite with dynamic size, ONNX when installed."""
import errno
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from whitebox.base import files
from whitebox.base.image_io import to_uint8, to_unit_range
from whitebox.cli import cartoonize, export
from whitebox.infer import export as ex
from whitebox.infer import export_check as chk
from whitebox.infer import weights
from whitebox.infer.inference import Cartoonizer, resize_crop
from whitebox.model.checkpoints import load_generator
from whitebox.model.network import Generator


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
    np.testing.assert_array_equal(ours, resize_crop(image, 48))


@pytest.fixture(scope="module")
def area_resize():
    """ex.area_resize as one graph for all sizes, as the SavedModel runs it."""
    return tf.function(ex.area_resize, input_signature=[
        tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.int32)])


def area_cases(count=40, seed=4):
    """(h, w, new_h, new_w): integer factors (2x2 blocks round half up in OpenCV, other
    blocks half to even), mixed ones, factors just over 1, large ones, and random sizes."""
    cases = [(64, 96, 32, 48), (60, 90, 20, 30), (60, 90, 30, 30), (48, 96, 12, 48),
             (72, 72, 12, 12), (50, 70, 5, 7), (64, 64, 64, 64), (721, 731, 720, 730),
             (731, 721, 730, 720), (1522, 1964, 720, 929), (1964, 1522, 929, 720),
             (75, 33, 1, 1), (9, 200, 8, 3)]
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(2, 300, 2))
        cases.append((h, w, int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))))
    return cases


@pytest.mark.parametrize("h, w, new_h, new_w", area_cases())
def test_area_resize_equals_opencv_inter_area(area_resize, h, w, new_h, new_w):
    image = np.random.default_rng(h * w).integers(0, 256, (h, w, 3), np.uint8)
    ours = area_resize(tf.constant(image), new_h, new_w).numpy()
    np.testing.assert_array_equal(
        ours, cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("shape", [(1001, 731), (900, 1500), (37, 50), (1440, 2160),
                                   (2160, 1440), (2160, 2880), (721, 731), (1522, 1964),
                                   (1964, 1522), (1100, 730)])
def test_tf_resize_crop_equals_resize_crop(shape):
    image = np.random.default_rng(3).integers(0, 256, (*shape, 3), np.uint8)
    np.testing.assert_array_equal(ex.tf_resize_crop(tf.constant(image)).numpy(),
                                  resize_crop(image))


@pytest.fixture(scope="module")
def savedmodel_720(tmp_path_factory, module):
    """The SavedModel with the default cap of 720; returns its folder."""
    folder = tmp_path_factory.mktemp("export720") / "sm"
    ex.save_savedmodel(module, folder)
    return folder


@pytest.mark.parametrize("shape", [(730, 1100), (1100, 730)])
def test_serving_default_equals_the_cartoonizer_over_the_cap(savedmodel_720, module, shape):
    """A photo over 720 on its short side: serving_default gives cartoonize.py's bytes (TF's
    ResizeArea was off by a level on a few pixels, and the network made that several levels)."""
    image = cv2.resize(photo(200, 300, seed=5), shape[::-1], interpolation=cv2.INTER_LINEAR)
    loaded = tf.saved_model.load(str(savedmodel_720))
    cartoon = loaded.signatures["serving_default"](image=tf.constant(image))["cartoon"].numpy()
    np.testing.assert_array_equal(cartoon, Cartoonizer(module.generator).cartoonize(image))


def test_savedmodel_check_runs_over_the_cap(savedmodel_720, module):
    assert min(chk.capped_check_image().shape[:2]) > 720
    result = chk.check_savedmodel(savedmodel_720, module.generator)
    assert result["input"] == (1100, 730) and result["resized"] == (1080, 720)
    assert result["uint8_levels"] == 0 and result["float_levels"] == 0


def test_float_signature_matches_the_cartoonizer(savedmodel, module):
    image = photo(32, 40)
    x = to_unit_range(image)
    got = savedmodel.signatures["cartoonize_float"](photo=tf.constant(x[None]))["output"]
    want = Cartoonizer(module.generator).run_float(x)
    np.testing.assert_allclose(got.numpy()[0], want, atol=1e-5)


@pytest.mark.parametrize("quantize", ["none", "fp16"])
def test_tflite_round_trip_two_sizes(module, quantize):
    run = chk.tflite_runner(ex.tflite_bytes(module, quantize))
    for h, w in [(32, 40), (48, 32)]:
        x = to_unit_range(photo(h, w))[None]
        ref = chk.reference_output(module, photo(h, w))
        got = run(x)
        assert got.shape == (1, h, w, 3)
        assert np.abs(to_uint8(got).astype(int) - to_uint8(ref)).max() <= 1


def test_onnx_round_trip(module):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    run = chk.onnx_runner(ex.onnx_bytes(module.cartoonize_float))
    for h, w in [(32, 40), (48, 32)]:
        ref = chk.reference_output(module, photo(h, w))
        got = run(to_unit_range(photo(h, w))[None])
        assert np.abs(to_uint8(got).astype(int) - to_uint8(ref)).max() <= 1


def test_cli_tflite_prints_the_check(tmp_path, tf1_checkpoint, capsys):
    out = tmp_path / "m.tflite"
    assert export.main(["tflite", str(out), "--weights", str(tf1_checkpoint[0])]) == 0
    assert out.stat().st_size > 1_000_000
    assert "check tflite --quantize none: max difference" in capsys.readouterr().out


def test_missing_tf2onnx_is_reported_before_the_weights_load(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    monkeypatch.setattr(weights, "load_generator_weights",
                        lambda *a, **k: pytest.fail("weights loaded"))
    assert export.main(["onnx", str(tmp_path / "m.onnx")]) == 2
    assert "ONNX export needs tf2onnx" in capsys.readouterr().err


def test_tflite_into_missing_folders_creates_them(tmp_path, tf1_checkpoint):
    out = tmp_path / "new" / "deeper" / "m.tflite"
    assert export.main(["tflite", str(out), "--weights", str(tf1_checkpoint[0]),
                        "--no-check"]) == 0
    assert out.stat().st_size > 1_000_000


@pytest.mark.parametrize("fmt, out, reason", [
    ("tflite", "a_file/m.tflite", "a_file is a file, not a folder"),
    ("onnx", "a_file/sub/m.onnx", "a_file is a file, not a folder"),
    ("tflite", "a_folder.tflite", "is a folder; tflite writes one file"),
    ("savedmodel", "a_file", "exists and is not a folder"),
    ("savedmodel", "a_file/sm", "a_file is a file, not a folder")])
def test_unusable_out_is_a_usage_error(tmp_path, monkeypatch, capsys, fmt, out, reason):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_bytes(b"mine")
    (tmp_path / "a_folder.tflite").mkdir()
    monkeypatch.setattr(weights, "load_generator_weights",
                        lambda *a, **k: pytest.fail("weights loaded"))
    assert export.main([fmt, out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("export.py: error: ") and reason in err[0]
    assert (tmp_path / "a_file").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder.tflite"]


@pytest.mark.parametrize("fmt, out", [("onnx", "m.tflite"), ("tflite", "m.onnx"),
                                      ("tflite", "m"), ("onnx", "folder/")])
def test_a_file_name_that_is_not_the_format_is_a_usage_error(tmp_path, capsys, fmt, out):
    """ONNX is never written into a .tflite name (nor the other way round)."""
    with pytest.raises(SystemExit) as exit_:
        export.parse_args([fmt, str(tmp_path / out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"export.py: error: {tmp_path / out}: {fmt} writes one file whose "
                             f"name ends in .{fmt}")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("fmt, out, reason", [
    ("tflite", "photos/p.tflite", "photos/p.tflite exists and is not a .tflite export"),
    ("onnx", "photos/p.onnx", "photos/p.onnx exists and is not a .onnx export"),
    ("savedmodel", "photos", "photos holds files that are not a SavedModel")])
def test_out_over_a_users_files_is_refused(tmp_path, monkeypatch, capsys, fmt, out, reason):
    """An existing OUT is replaced only when it is an export of the same kind: a photo named as
    OUT, or a folder of photos as a SavedModel's folder, is left alone."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    jpeg = cv2.imencode(".jpg", photo(16, 16))[1].tobytes()
    for name in ("p.png", "p.tflite", "p.onnx"):    # photos, whatever their names say
        (tmp_path / "photos" / name).write_bytes(jpeg)
    monkeypatch.setattr(weights, "load_generator_weights",
                        lambda *a, **k: pytest.fail("weights loaded"))
    assert export.main([fmt, out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("export.py: error: ") and reason in err[0]
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == ["p.onnx", "p.png",
                                                                        "p.tflite"]
    assert all(p.read_bytes() == jpeg for p in (tmp_path / "photos").iterdir())


def test_out_over_an_earlier_export_is_replaced(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"\x1c\0\0\0TFL3old")
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07old")
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"old")
    (tmp_path / "empty").mkdir()
    assert ex.output_problem(str(tmp_path / "m.tflite"), "tflite") is None
    assert ex.output_problem(str(tmp_path / "m.onnx"), "onnx") is None
    assert ex.output_problem(str(tmp_path / "sm"), "savedmodel") is None
    assert ex.output_problem(str(tmp_path / "empty"), "savedmodel") is None


def test_missing_tf2onnx_is_a_clear_error(tmp_path, tf1_checkpoint, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    assert export.main(["onnx", str(tmp_path / "m.onnx"), "--weights",
                        str(tf1_checkpoint[0])]) == 2
    assert "ONNX export needs tf2onnx" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_a_failed_savedmodel_write_leaves_nothing_and_a_rerun_succeeds(tmp_path, tf1_checkpoint,
                                                                        capsys, monkeypatch):
    """A SavedModel is written beside OUT and renamed into place: a write that fails halfway
    (here the disk fills after the variables) leaves no partial OUT that a rerun would refuse,
    and a rerun sweeps the staging folders of killed exports (never a running one's)."""
    out, real_save = tmp_path / "sm", tf.saved_model.save

    def disk_full_after_the_variables(obj, export_dir, **kwargs):
        real_save(obj, export_dir, **kwargs)
        (Path(export_dir) / "saved_model.pb").unlink()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tf.saved_model, "save", disk_full_after_the_variables)
    argv = ["savedmodel", str(out), "--weights", str(tf1_checkpoint[0]), "--no-check"]
    assert export.main(argv) == 1
    assert capsys.readouterr().err.strip() == (f"export.py: error: cannot write {out}: No "
                                                  f"space left on device")
    assert not any(tmp_path.iterdir())
    killed, running = tmp_path / ".sm.k1a2b3c4.part", tmp_path / ".sm.r5d6e7f8.part"
    (killed / "variables" / "variables_temp").mkdir(parents=True)
    running.mkdir()
    an_hour_ago = time.time() - 3600
    for folder in (killed, running):
        os.utime(folder, (an_hour_ago, an_hour_ago))
    held = files.lock(running)                           # its export is still at work
    monkeypatch.setattr(tf.saved_model, "save", real_save)
    try:
        for _ in range(2):                               # written, then replaced
            assert export.main(argv) == 0
            assert sorted(p.name for p in tmp_path.iterdir()) == [running.name, "sm"]
            assert (out / "saved_model.pb").is_file() and not (out / "variables_temp").exists()
    finally:
        os.close(held)
    assert tf.saved_model.load(str(out)).signatures.keys() == {"serving_default",
                                                               "cartoonize_float"}
