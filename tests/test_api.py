"""The Python API: `from whitebox import Cartoonizer`, loaded on first use, gives the bytes
cartoonize.py writes."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

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
