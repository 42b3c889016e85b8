"""read_bgr from two threads at once must leave fd 2 (stderr) where it was."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from whitebox.base import image_io


def test_overlapping_reads_restore_stderr(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    both_inside = threading.Barrier(2, timeout=10)
    real_decode = image_io.cv2.imdecode

    def decode_together(*args):
        both_inside.wait()          # both threads are inside the quiet section now
        return real_decode(*args)

    monkeypatch.setattr(image_io.cv2, "imdecode", decode_together)
    before = os.fstat(2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(image_io.read_bgr, [path] * 40))
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
