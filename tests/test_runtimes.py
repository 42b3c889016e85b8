"""cartoonize.py's runtimes: the choice, the cache of converted models, and the same output
as TensorFlow through OpenVINO and ONNX Runtime (skipped where they are not installed)."""
import importlib.util
import json

import cv2
import numpy as np
import pytest

from whitebox.base import files
from whitebox.base.files import lock, sha256_file
from whitebox.base.image_io import to_uint8, to_unit_range
from whitebox.cli import cartoonize
from whitebox.infer import loader, runtimes
from whitebox.infer.inference import Cartoonizer, TFRunner
from whitebox.infer.options import InferenceOptions
from whitebox.model import precision

CONVERTED = ("openvino", "onnxruntime")
OPENVINO = InferenceOptions(runtime="openvino")


def need(runtime):
    """Skip unless `runtime`'s packages are installed."""
    if not precision.installed(runtime):
        pytest.skip(f"{' and '.join(precision.missing(runtime))} not installed (pip install -r "
                    f"requirements-runtimes.txt)")


@pytest.fixture
def only(monkeypatch):
    """only(*names): pretend that just these runtimes are installed."""
    def pretend(*names):
        monkeypatch.setattr(precision, "missing",
                            lambda name: [] if name in (*names, "tf") else [name])
    return pretend


def test_auto_takes_openvino_then_onnxruntime_then_tf(only):
    only("openvino", "onnxruntime")
    assert precision.choose("auto", "fp32") == ("openvino", "fp32")
    only("onnxruntime")
    assert precision.choose("auto", "fp32") == ("onnxruntime", "fp32")
    only()
    assert precision.choose("auto", "fp32") == ("tf", "fp32")


def test_auto_skips_a_runtime_without_the_precision(only, monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(precision, "gpu_compute_capabilities", list)
    only("onnxruntime")  # float32 only: TF runs bf16 natively here
    assert precision.choose("auto", "bf16") == ("tf", "bf16")
    only("openvino", "onnxruntime")
    assert precision.choose("auto", "bf16") == ("openvino", "bf16")
    lines = []  # fp16 runs nowhere here: the first installed runtime, in fp32
    assert precision.choose("auto", "fp16", warn=lines.append) == ("openvino", "fp32")
    assert len(lines) == 1 and "fp16 unavailable with openvino" in lines[0]


def test_unsupported_precision_falls_back_with_one_line(only):
    only("onnxruntime")
    lines = []
    assert precision.choose("onnxruntime", "bf16", warn=lines.append) == ("onnxruntime", "fp32")
    assert len(lines) == 1 and "bf16 unavailable with onnxruntime" in lines[0]


def test_missing_runtime_is_a_one_line_usage_error(only, tmp_path, tf1_checkpoint, capsys):
    only()
    cv2.imwrite(str(tmp_path / "a.png"), np.full((16, 16, 3), 90, np.uint8))
    code = cartoonize.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                            "-w", str(tf1_checkpoint[0]), "--runtime", "openvino", "-q"])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "out").exists()
    assert err.startswith("cartoonize.py: error: --runtime openvino needs") and err.count("\n") == 1
    assert "requirements-runtimes.txt" in err


def test_start_line_names_runtime_and_precision(tmp_path, tf1_checkpoint, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((16, 16, 3), 90, np.uint8))
    code = cartoonize.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                            "-w", str(tf1_checkpoint[0]), "--runtime", "tf"])
    assert code == 0
    assert capsys.readouterr().err.splitlines()[0] == "runtime tf, precision fp32"


def test_checkpoint_digest_follows_the_contents(tmp_path, tf1_checkpoint):
    prefix = tf1_checkpoint[0] / "model-33999"
    first = runtimes.checkpoint_digest(prefix)
    assert first == runtimes.checkpoint_digest(prefix)
    copy = tmp_path / "model-1"
    for path in tf1_checkpoint[0].glob("model-33999.*"):
        data = bytearray(path.read_bytes())
        if ".data-" in path.name:
            data[-1] ^= 1
        (tmp_path / path.name.replace("model-33999", "model-1")).write_bytes(data)
    assert runtimes.checkpoint_digest(copy) != first


def test_cache_converts_once_and_rebuilds_a_damaged_entry(tmp_path):
    calls, lines = [], []

    def convert(path):
        calls.append(path)
        (path / "model.bin").write_bytes(b"weights")

    def load(path):
        data = (path / "model.bin").read_bytes()
        if data != b"weights":
            raise RuntimeError("bad model")
        return data

    entry = tmp_path / "runtimes" / "x" / "key"
    assert runtimes.cached(entry, convert, load, lines.append) == b"weights"
    assert runtimes.cached(entry, convert, load, lines.append) == b"weights"
    assert len(calls) == 1 and calls[0] != entry  # written elsewhere, then renamed
    assert sorted(p.name for p in entry.parent.iterdir()) == ["key"]  # no temporary left
    (entry / "model.bin").write_bytes(b"weighs")  # damaged: checksum no longer matches
    lines.clear()
    assert runtimes.cached(entry, convert, load, lines.append) == b"weights"
    assert len(calls) == 2
    assert "is damaged (model.bin does not match its checksum); converting again" in lines[0]
    (entry / runtimes.MANIFEST).write_text("{")  # unreadable manifest
    assert runtimes.cached(entry, convert, load, lambda line: None) == b"weights"
    assert len(calls) == 3


def test_failed_conversion_leaves_no_entry(tmp_path):
    def convert(path):
        (path / "half").write_bytes(b"x")
        raise RuntimeError("converter broke")

    entry = tmp_path / "key"
    with pytest.raises(RuntimeError):
        runtimes.cached(entry, convert, lambda path: None, lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_conversions_folder_is_removed_by_the_next(tmp_path):
    """A conversion killed before its rename (kill -9) leaves ".KEY.XXXXXXXX.part": the next
    conversion into that cache folder removes it, and leaves a recent one alone (it may be a
    concurrent run's, still at work)."""
    import os
    import time

    def convert(path):
        (path / "model.bin").write_bytes(b"weights")

    parent = tmp_path / "runtimes" / "x"
    stale, recent = parent / ".old.a1b2c3d4.part", parent / ".new.e5f6g7h8.part"
    for folder in (stale, recent):
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(b"half")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    busy = parent / ".busy.i9j0k1l2.part"  # old, but a conversion at work holds its lock
    busy.mkdir()
    os.utime(busy, (hour_ago, hour_ago))
    mine = parent / "my.notes.part"
    mine.write_bytes(b"not ours")
    held = lock(busy)
    try:
        runtimes.cached(parent / "key", convert, lambda path: None, lambda line: None)
    finally:
        os.close(held)
    assert sorted(p.name for p in parent.iterdir()) == [busy.name, recent.name, "key",
                                                         mine.name]


@pytest.mark.parametrize("runtime", CONVERTED)
@pytest.mark.parametrize("use_filter", [True, False])
def test_runner_matches_tf_with_free_batch_and_size(runtime, use_filter, random_generator,
                                                    runtime_cache):
    need(runtime)
    runner = loader.make_runner(runtime, random_generator, "0" * 64, use_filter,
                                  warn=lambda line: None)
    reference = TFRunner(random_generator, use_filter)
    rng = np.random.default_rng(1)
    for shape in [(2, 24, 40, 3), (1, 36, 20, 3)]:
        photo = rng.uniform(-1, 1, shape).astype(np.float32)
        got = runner(photo)
        assert got.shape == shape and got.dtype == np.float32
        assert np.abs(to_uint8(got).astype(int) - to_uint8(reference(photo))).max() <= 1
    keys = [json.loads((entry / "key.json").read_text())
            for entry in (runtime_cache / runtime).iterdir()]
    assert any(key["runtime"] == runtime and key["checkpoint_sha256"] == "0" * 64
               for key in keys)


@pytest.mark.parametrize("runtime", CONVERTED)
def test_cartoonizer_tiles_through_a_runtime(runtime, random_generator):
    need(runtime)
    runner = loader.make_runner(runtime, random_generator, "1" * 64, warn=lambda line: None)
    image = np.random.default_rng(3).integers(0, 256, (256, 280, 3), np.uint8)
    whole = Cartoonizer(random_generator, max_short_side=0).cartoonize(image)
    calls = []
    tiled = Cartoonizer(max_short_side=0, tile_core=64, tile_margin=96,
                        runner=lambda x: calls.append(x.shape) or runner(x))
    assert np.abs(tiled.cartoonize(image).astype(int) - whole).max() <= 1
    assert len(calls) == 4 * 5
    batch = tiled.cartoonize_batch([image[:40, :48], image[8:48, 8:56]])
    assert [b.shape for b in batch] == [(40, 48, 3)] * 2


def test_openvino_bf16_keeps_the_filter_in_float32(random_generator):
    need("openvino")
    ok, why = precision.supports("openvino", "bf16")
    if not ok:
        pytest.skip(f"bf16: {why}")
    runner = loader.make_runner("openvino", random_generator, "2" * 64, precision="bf16",
                                  warn=lambda line: None)
    photo = np.random.default_rng(4).uniform(-1, 1, (1, 48, 64, 3)).astype(np.float32)
    a, b = to_uint8(TFRunner(random_generator)(photo)), to_uint8(runner(photo))
    mse = np.mean((a.astype(float) - b) ** 2)
    assert mse == 0 or 10 * np.log10(255 ** 2 / mse) >= 45


def need_int8():
    """Skip unless OpenVINO and NNCF are installed."""
    need("openvino")
    if importlib.util.find_spec("nncf") is None:
        pytest.skip("nncf not installed (pip install -r requirements-runtimes.txt)")


def test_int8_is_never_chosen_unless_asked_and_falls_back_without_nncf(only, monkeypatch):
    only("openvino", "onnxruntime")
    assert precision.choose("auto", "fp32") == ("openvino", "fp32")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: object() if name == "nncf" else real_find_spec(name))
    assert precision.choose("auto", "int8") == ("openvino", "int8")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: None if name == "nncf" else real_find_spec(name))
    lines = []
    assert precision.choose("auto", "int8", warn=lines.append) == ("openvino", "fp32")
    assert len(lines) == 1 and "int8 unavailable with openvino (needs nncf" in lines[0]
    only()
    lines = []
    assert precision.choose("auto", "int8", warn=lines.append) == ("tf", "fp32")
    assert len(lines) == 1 and "int8 runs on --runtime openvino only" in lines[0]


@pytest.mark.parametrize("runtime", ["tf", "onnxruntime"])
def test_int8_on_another_runtime_is_a_one_line_usage_error(runtime, tmp_path, tf1_checkpoint,
                                                           capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((16, 16, 3), 90, np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        cartoonize.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                         "-w", str(tf1_checkpoint[0]), "--runtime", runtime,
                         "--precision", "int8", "-q"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and not (tmp_path / "out").exists()
    assert err.count("\n") == 1 and "--precision int8 runs on --runtime openvino" in err


def test_int8_cache_key_differs_from_fp32():
    need_int8()
    fp32, _ = runtimes.cache_key("3" * 64, "openvino", True, "fp32")
    int8, fields = runtimes.cache_key("3" * 64, "openvino", True, "int8")
    assert int8 != fp32 and "nncf" in fields["converter"]


def test_calibration_photos_are_preprocessed_as_inference_does():
    photos = runtimes.calibration_photos()
    assert len(photos) == 4
    for photo in photos:
        assert photo.dtype == np.float32 and photo.shape[0] == 1 and photo.shape[3] == 3
        assert photo.shape[1] % 8 == 0 and photo.shape[2] % 8 == 0
        assert -1 <= photo.min() < 0 < photo.max() <= 1


def test_int8_runs_through_the_cartoonizer_and_really_quantizes(random_generator,
                                                                runtime_cache):
    need_int8()
    runner = loader.make_runner("openvino", random_generator, "4" * 64, precision="int8",
                                  warn=lambda line: None)
    image = np.random.default_rng(5).integers(0, 256, (40, 60, 3), np.uint8)
    got = Cartoonizer(max_short_side=0, runner=runner)
    photo = to_unit_range(image[:40, :56])[None]
    raw = runner(photo)
    assert raw.shape == photo.shape and np.isfinite(raw).all()
    assert got.cartoonize(image).shape == (40, 56, 3)
    reference = TFRunner(random_generator)(photo)
    assert np.abs(raw - reference).max() > 1e-3  # not float32 arithmetic
    assert np.abs(to_uint8(raw).astype(int) - to_uint8(reference)).mean() < 20
    keys = [json.loads((entry / "key.json").read_text())
            for entry in (runtime_cache / "openvino").iterdir()]
    assert any(key["precision"] == "int8" and key["checkpoint_sha256"] == "4" * 64
               for key in keys)


def test_openvino_reasons_say_in_words_what_failed(random_generator, tf1_checkpoint,
                                                   tmp_path, monkeypatch):
    """A disk that fills while the model is written (here: the weights file is /dev/full) and
    a cached entry OpenVINO cannot read: the line says what failed, not "basic_ios::clear:
    iostream error" or "Exception from src/inference/src/cpp/core.cpp:132:". A cache of its
    own, so that no other test's conversion of the same weights is found there."""
    import contextlib
    import os

    need("openvino")
    runtime_cache = tmp_path / "runtimes"
    monkeypatch.setattr(runtimes, "cache_root", lambda: runtime_cache)
    real_staging = files.staging_folder

    @contextlib.contextmanager
    def disk_full(path):
        with real_staging(path) as folder:
            os.symlink("/dev/full", folder / "generator.bin")
            yield folder

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full to stand for a full disk")
    lines = []
    prefix = str(tf1_checkpoint[0] / "model-33999")
    with monkeypatch.context() as patch:
        patch.setattr(files, "staging_folder", disk_full)
        runtime = loader.make_cartoonizer(random_generator, prefix, OPENVINO,
                                            warn=lines.append).runtime
    assert runtime == "tf"
    assert f"could not write the converted model to {runtime_cache / 'openvino'} (disk full" \
        in lines[-1]
    assert "iostream" not in lines[-1] and "\n" not in lines[-1]

    lines.clear()
    loader.make_cartoonizer(random_generator, prefix, OPENVINO, warn=lines.append)
    (entry,) = [path for path in (runtime_cache / "openvino").iterdir()
                if (path / "generator.xml").is_file()
                and json.loads((path / "key.json").read_text())["checkpoint_sha256"]
                == runtimes.checkpoint_digest(prefix)]
    (entry / "generator.xml").write_text("<net")  # a damaged entry whose manifest agrees
    manifest = json.loads((entry / runtimes.MANIFEST).read_text())
    manifest["files"]["generator.xml"] = sha256_file(entry / "generator.xml").hexdigest()
    (entry / runtimes.MANIFEST).write_text(json.dumps(manifest))
    lines.clear()
    runtime = loader.make_cartoonizer(random_generator, prefix, OPENVINO,
                                        warn=lines.append).runtime
    assert runtime == "openvino"
    assert lines[0].startswith(f"cached model {entry} is damaged (could not "
                               f"read the cached model {entry / 'generator.xml'} (")
    assert "core.cpp" not in lines[0] and "\n" not in lines[0]
