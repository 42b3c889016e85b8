"""--precision: hardware fallback, where the low precision is used, and how close it stays."""
import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import shared_path
from whitebox.base.image_io import to_unit_range
from whitebox.cli import cartoonize
from whitebox.infer.inference import Cartoonizer
from whitebox.model import precision
from whitebox.model.checkpoints import load_generator
from whitebox.model.network import Generator


def smooth_image(h=64, w=64):
    """Slow sinusoids in each channel: no texture the network could amplify."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([128 + 100 * np.sin(x / 9), 128 + 100 * np.cos(y / 11),
                     128 + 80 * np.sin((x + y) / 13)], -1).astype(np.uint8)


def test_fallback_prints_one_line_and_uses_fp32(plain_cpu):
    lines = []
    assert precision.choose("tf", "bf16", warn=lines.append)[1] == "fp32"
    assert precision.choose("tf", "fp16", warn=lines.append)[1] == "fp32"
    assert precision.choose("tf", "fp32", warn=lines.append)[1] == "fp32"
    assert len(lines) == 2 and all("using fp32" in line for line in lines)
    assert lines[0].startswith("precision bf16 unavailable (needs a CPU with AVX512-BF16")


def test_bf16_is_chosen_on_a_cpu_with_bf16_instructions(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(precision, "gpu_compute_capabilities", list)
    assert precision.choose("tf", "bf16", warn=pytest.fail)[1] == "bf16"


def test_cli_fallback_line_and_success(tmp_path, plain_cpu, tf1_checkpoint, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), smooth_image(32, 40))
    rc = cartoonize.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                          "--weights", str(tf1_checkpoint[0]), "--precision", "fp16", "-q"])
    assert rc == 0
    err = capsys.readouterr().err
    assert err.count("precision fp16 unavailable") == 1
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (32, 40, 3)


def op_dtypes(cartoonizer):
    """{op type: set of dtypes} of the compiled forward pass."""
    graph = cartoonizer.runner.function.get_concrete_function().graph
    found = {}
    for op in graph.get_operations():
        if op.type in ("Conv2D", "DepthwiseConv2dNative"):
            found.setdefault(op.type, set()).add(op.get_attr("T"))
    return found


@pytest.mark.parametrize("name,dtype", [("bf16", tf.bfloat16), ("fp16", tf.float16)])
def test_generator_in_low_precision_filter_in_float32(random_generator, name, dtype):
    found = op_dtypes(Cartoonizer(random_generator, precision=name))
    assert found == {"Conv2D": {dtype}, "DepthwiseConv2dNative": {tf.float32}}
    assert op_dtypes(Cartoonizer(random_generator)) == {
        "Conv2D": {tf.float32}, "DepthwiseConv2dNative": {tf.float32}}


# Bounds on the RMS difference to fp32 relative to the RMS of the fp32 output, for random
# weights. Each convolution rounds its input and kernel to the low precision (unit roundoff
# 2^-9 for bfloat16, 2^-12 for float16) and accumulates in float32; the 19 convolutions in
# series add independent errors, so about sqrt(2 * 19) * u relative: 1.2% for bf16, 0.15% for
# fp16 (measured: 0.97% and 0.09%). The bounds leave 2x margin; an error in the casts (such as
# feeding bytes or running in float32 by mistake) lands far outside either side.
RELATIVE_RMS_BOUND = {"bf16": 0.02, "fp16": 0.003}


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_low_precision_stays_close_on_random_weights(random_generator, name):
    photo = to_unit_range(smooth_image())
    ref = Cartoonizer(random_generator).run_float(photo)
    out = Cartoonizer(random_generator, precision=name).run_float(photo)
    assert out.dtype == np.float32
    rel = np.sqrt(np.mean((out - ref) ** 2) / np.mean(ref ** 2))
    assert 0 < rel < RELATIVE_RMS_BOUND[name]


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize("name", ["bf16", "fp16"])
def test_low_precision_psnr_on_a_photo_with_official_weights(official_weights, name):
    """On trained weights the output is what users see: PSNR >= 45 dB against fp32 (the
    deployment target; docs/DEPLOYMENT.md gives the measured values)."""
    photo = cv2.imread(str(shared_path("images", "reference_test_images", "food6.jpg")))
    photo = cv2.resize(photo, (96, 64), interpolation=cv2.INTER_AREA)
    gen = Generator()
    load_generator(gen, official_weights)
    ref = Cartoonizer(gen).cartoonize(photo)
    out = Cartoonizer(gen, precision=name).cartoonize(photo)
    assert psnr(ref, out) >= 45
    assert np.abs(ref.astype(int) - out).max() <= 8
