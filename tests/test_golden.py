"""The official weights through cartoonize.py reproduce the reference's own output images,
whatever runtime runs the network."""
import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from whitebox.cli import cartoonize
from whitebox.model import precision


@pytest.mark.parametrize("runtime", ["tf", "openvino", "onnxruntime"])
def test_reference_test_images_match_golden(tmp_path, official_weights, runtime):
    if not precision.installed(runtime):
        pytest.skip(f"{runtime} is not installed (pip install -r requirements-runtimes.txt)")
    photos = shared_path("images", "reference_test_images")
    golden = shared_path("golden", "reference_test_images")
    out = tmp_path / "out"
    code = cartoonize.main(["-i", str(photos), "-o", str(out), "--format", "png",
                            "-w", str(official_weights), "-q", "--runtime", runtime])
    assert code == 0
    names = sorted(p.name for p in golden.glob("*.png"))
    assert names and names == sorted(p.name for p in out.iterdir())
    for name in names:
        ours = cv2.imread(str(out / name)).astype(int)
        ref = cv2.imread(str(golden / name)).astype(int)
        assert ours.shape == ref.shape, name
        diff = np.abs(ours - ref)
        assert diff.max() <= 1, name
        assert (diff > 0).mean() <= 0.005, name
