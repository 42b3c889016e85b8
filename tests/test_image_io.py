import os

import cv2
import numpy as np
import pytest

from whitebox.image_io import ImageError, read_bgr, write_atomic


def encode(image, ext):
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


@pytest.fixture
def photo():
    return np.random.default_rng(0).integers(0, 256, (24, 32, 3), np.uint8)


def test_png_round_trip_keeps_bgr(tmp_path, photo):
    (tmp_path / "a.png").write_bytes(encode(photo, ".png"))
    np.testing.assert_array_equal(read_bgr(tmp_path / "a.png"), photo)


def test_grey_alpha_and_16_bit_read_as_opencv_imread(tmp_path, photo):
    grey = photo[..., 1]
    (tmp_path / "g.png").write_bytes(encode(grey, ".png"))
    out = read_bgr(tmp_path / "g.png")
    assert out.shape == (24, 32, 3) and (out == grey[..., None]).all()

    deep = photo.astype(np.uint16) * 257 + 200
    (tmp_path / "d.png").write_bytes(encode(deep, ".png"))
    np.testing.assert_array_equal(read_bgr(tmp_path / "d.png"), deep >> 8)

    bgra = np.dstack([photo, np.full((24, 32), 255, np.uint8)])
    bgra[0, 0, 3] = 0
    bgra[0, 1, 3] = 128
    (tmp_path / "a.png").write_bytes(encode(bgra, ".png"))
    for path in ["g.png", "d.png", "a.png"]:  # the reference's own reading, bit for bit
        np.testing.assert_array_equal(read_bgr(tmp_path / path),
                                      cv2.imread(str(tmp_path / path)))
    np.testing.assert_array_equal(read_bgr(tmp_path / "a.png"), photo)
    white = read_bgr(tmp_path / "a.png", alpha="white")
    np.testing.assert_array_equal(white.reshape(-1, 3)[2:], photo.reshape(-1, 3)[2:])
    assert (white[0, 0] == 255).all()
    expected = np.round((photo[0, 1] / 255 * (128 / 255) + (1 - 128 / 255)) * 255)
    np.testing.assert_array_equal(white[0, 1], expected)


def test_exif_orientation_is_applied_as_imread_does(tmp_path, photo):
    from PIL import Image

    image = Image.fromarray(photo[..., ::-1])
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_bgr(tmp_path / "r.jpg")
    assert out.shape == (32, 24, 3)
    np.testing.assert_array_equal(out, cv2.imread(str(tmp_path / "r.jpg")))


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"hello, I am text", "not a decodable image"),
])
def test_bad_bytes(tmp_path, content, reason):
    (tmp_path / "x.jpg").write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        read_bgr(tmp_path / "x.jpg")


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_files(tmp_path, photo, ext):
    data = encode(np.tile(photo, (4, 4, 1)), ext)
    (tmp_path / f"t{ext}").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError, match="truncated"):
        read_bgr(tmp_path / f"t{ext}")


def test_unreadable_and_missing(tmp_path, photo):
    with pytest.raises(ImageError, match="no such file"):
        read_bgr(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        read_bgr(tmp_path)
    if os.geteuid() != 0:  # root reads anything
        path = tmp_path / "locked.png"
        path.write_bytes(encode(photo, ".png"))
        path.chmod(0)
        with pytest.raises(ImageError, match="permission"):
            read_bgr(path)


def test_write_atomic_leaves_no_partial_file(tmp_path, photo):
    write_atomic(tmp_path / "sub" / "out.png", photo)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "sub" / "out.png")), photo)
    with pytest.raises(ImageError, match="cannot write"):
        write_atomic(tmp_path / "out.unknownext", photo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
