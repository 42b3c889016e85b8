"""The Python API: `from whitebox import Cartoonizer`, loaded on first use, gives the bytes
cartoonize.py writes."""
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import whitebox
from tests.conftest import shared_path
from whitebox.cli import cartoonize


def test_import_whitebox_loads_no_tensorflow():
    probe = "import sys, whitebox; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env={"PYTHONPATH": str(Path(__file__).parents[1] / "src")}, check=True)
    assert result.stdout.strip() == "False"


def test_api_output_equals_cartoonize_py_bytes(tmp_path, official_weights):
    from whitebox import Cartoonizer

    source = min(shared_path("images", "reference_test_images").glob("*"))
    image = cv2.imread(str(source))[:200, :300]  # odd crop: the network crops to 8
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    assert cartoonize.main(["-i", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out"),
                            "-w", str(official_weights), "-q"]) == 0
    cartoonizer = Cartoonizer.from_pretrained(official_weights, runtime="auto")
    cartoon = cartoonizer(image)
    assert cartoon.dtype == np.uint8 and cartoon.shape == (200, 296, 3)
    assert np.array_equal(cartoon, cv2.imread(str(tmp_path / "out" / "photo.png")))


@pytest.mark.parametrize("options, message", [
    (dict(runtime="bogus"), "--runtime 'bogus': choose from auto, "),
    (dict(precision="fp64"), "--precision 'fp64': choose from fp32, "),
    (dict(alpha="black"), "--alpha 'black': choose from ignore, white"),
    (dict(max_short_side=-1), "--max-short-side must be 0 or positive"),
])
def test_bad_options_are_one_usage_error_before_anything_loads(options, message, monkeypatch):
    from whitebox.base.errors import UsageError
    from whitebox.infer import loader

    monkeypatch.setattr(loader, "load_cartoonizer", lambda *a, **k: pytest.fail("loaded"))
    with pytest.raises(UsageError, match="^" + re.escape(message)):
        whitebox.Cartoonizer.from_pretrained(**options)


@pytest.mark.parametrize("image", [np.zeros((20, 30), np.uint8), np.zeros((20, 30, 4), np.uint8),
                                   np.zeros((20, 30, 3), np.float32)])
def test_an_image_not_hxwx3_uint8_is_one_clear_error(image, tf1_checkpoint):
    cartoonizer = whitebox.Cartoonizer.from_pretrained(str(tf1_checkpoint[0]), runtime="tf")
    with pytest.raises(ValueError, match=r"^expected an HxWx3 uint8 BGR image, got shape"):
        cartoonizer(image)
