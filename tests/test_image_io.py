import os
import struct
import zlib

import cv2
import numpy as np
import pytest

from whitebox.base import errors, files, image_io
from whitebox.base.image_io import ImageError, read_bgr, write_atomic


def png_header_only(width, height):
    """A small valid PNG (right CRCs) whose header declares width x height 8-bit RGB pixels,
    with one tiny IDAT chunk that holds far fewer."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(8))) + chunk(b"IEND", b""))


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


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_device_named_as_input_is_refused_not_read(tmp_path):
    """A named pipe would block the read forever, /dev/zero would fill the memory: both are
    refused at once as not regular files."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        if not os.path.exists(path):
            continue
        with pytest.raises(ImageError, match="not a regular file"):
            read_bgr(path)


def test_write_atomic_leaves_no_partial_file(tmp_path, photo):
    write_atomic(tmp_path / "sub" / "out.png", photo)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "sub" / "out.png")), photo)
    with pytest.raises(ImageError, match="cannot write"):
        write_atomic(tmp_path / "out.unknownext", photo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_oversized_header_is_one_line_error_with_the_declared_size(tmp_path, monkeypatch):
    monkeypatch.delenv(image_io.PIXEL_LIMIT_ENV, raising=False)
    data = png_header_only(40000, 40000)
    assert len(data) < 100
    with pytest.raises(cv2.error):  # what OpenCV alone does with it
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    (tmp_path / "huge.png").write_bytes(data)
    with pytest.raises(ImageError) as err:
        read_bgr(tmp_path / "huge.png")
    assert str(err.value).startswith("image too large (40000 x 40000 declared)")
    assert "\n" not in str(err.value)


def test_pixel_limit_comes_from_the_environment(tmp_path, photo, monkeypatch):
    (tmp_path / "a.png").write_bytes(encode(photo, ".png"))
    monkeypatch.setenv(image_io.PIXEL_LIMIT_ENV, str(24 * 32 - 1))
    with pytest.raises(ImageError, match=r"image too large \(32 x 24 declared\); the limit is "
                                         r"767 pixels"):
        read_bgr(tmp_path / "a.png")
    monkeypatch.setenv(image_io.PIXEL_LIMIT_ENV, str(24 * 32))
    assert read_bgr(tmp_path / "a.png").shape == (24, 32, 3)
    for value, limit in [("2Mb", 2 << 20), ("3kb", 3072), ("12", 12), ("junk", 1 << 30)]:
        monkeypatch.setenv(image_io.PIXEL_LIMIT_ENV, value)  # as OpenCV reads it
        assert image_io.pixel_limit() == limit


def test_empty_declared_size(tmp_path):
    (tmp_path / "z.png").write_bytes(png_header_only(0, 5))
    with pytest.raises(ImageError, match=r"declares an empty image \(0 x 5\)"):
        read_bgr(tmp_path / "z.png")


def test_declared_size_of_common_formats(photo):
    from io import BytesIO

    from PIL import Image

    image = photo[:21]  # 32 wide, 21 high
    for ext in [".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm", ".pgm", ".pbm", ".sr"]:
        grey = ext in (".pgm", ".pbm")
        data = encode(image[..., 0] if grey else image, ext)
        assert image_io.declared_size(data) == (32, 21), ext
    for fmt, options in [("GIF", {}), ("WEBP", {"lossless": True}), ("WEBP", {"quality": 50}),
                         ("JPEG", {"progressive": True}), ("TIFF", {"compression": "tiff_lzw"})]:
        buffer = BytesIO()
        Image.fromarray(image).save(buffer, fmt, **options)
        assert image_io.declared_size(buffer.getvalue()) == (32, 21), (fmt, options)
    assert image_io.declared_size(b"P6 # a comment\n 40000\n# another\n 30000 255\n") == (
        40000, 30000)
    for cut in [b"\xff\xd8\xff", b"BM", b"RIFF\0\0\0\0WEBPVP8 ", b"II*\0", b"hello"]:
        assert image_io.declared_size(cut) is None


def test_any_opencv_error_while_decoding_is_one_line(tmp_path, photo, monkeypatch):
    def fail(*args):
        raise cv2.error("OpenCV(9) file.cpp:1: error: (-2:Unspecified error) first\nsecond")

    (tmp_path / "a.png").write_bytes(encode(photo, ".png"))
    monkeypatch.setattr(cv2, "imdecode", fail)
    with pytest.raises(ImageError) as err:
        read_bgr(tmp_path / "a.png")
    assert str(err.value) == "OpenCV cannot decode it ((-2:Unspecified error) first second)"


def test_encoding_errors_are_silenced_and_one_line(tmp_path, photo, capfd):
    with pytest.raises(ImageError, match="cannot write the '.pgm' format"):
        write_atomic(tmp_path / "colour.pgm", photo)
    err = capfd.readouterr().err
    assert "ERROR" not in err and "imencode" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_display_path_keeps_every_name_on_one_line():
    shown = errors.display_path("in/new\nline\tx\x1b[31m\u2028é.png")
    assert shown == "in/new\\nline\\tx\\x1b[31m\\u2028é.png"
    assert errors.display_path(os.fsdecode(b"raw\xff.png")) == "raw\\xff.png"


@pytest.mark.skipif(os.name != "posix", reason="needs fcntl locks")
def test_only_stale_temporary_files_of_ours_are_removed(tmp_path, photo):
    import fcntl

    stale = tmp_path / ".a.png.k2x_9abc.part"
    ours_but_busy = tmp_path / ".b.jpg.zz11yy22.part"
    not_ours = [".notes.txt.abcdefgh.part", ".a.png.short.part", "a.png.abcdefgh.part",
                "photo.part", ".a.png.abcdefgh.partial"]
    for path in [stale, ours_but_busy] + [tmp_path / n for n in not_ours]:
        path.write_bytes(b"x")
    (tmp_path / ".c.png.abcdefgh.part").mkdir()
    with open(ours_but_busy, "rb") as busy:
        fcntl.flock(busy.fileno(), fcntl.LOCK_EX)
        assert files.remove_stale_temporaries(tmp_path, image_io.IMAGE_EXTENSIONS) == [stale]
    assert not stale.exists() and ours_but_busy.exists()
    assert all((tmp_path / n).exists() for n in not_ours)
    assert (tmp_path / ".c.png.abcdefgh.part").is_dir()
    write_atomic(tmp_path / "d.png", photo)  # the lock it takes is gone once it returns
    assert files.remove_stale_temporaries(tmp_path, image_io.IMAGE_EXTENSIONS) == [ours_but_busy]


# Names of 255 bytes, the most ext4 and most other file systems take: ASCII, 2- and 4-byte
# UTF-8 characters, and bytes that are not UTF-8 (os.fsdecode keeps them as surrogates).
LONG_NAMES = ["a" * 251 + ".png", "é" * 125 + "x.png", "🙂" * 62 + "abc.jpg",
              os.fsdecode(b"\xff" * 251 + b".png")]


@pytest.mark.skipif(os.name != "posix", reason="needs fcntl locks")
@pytest.mark.parametrize("name", LONG_NAMES, ids=["ascii", "2-byte", "4-byte", "not-utf8"])
def test_names_of_255_bytes_are_written_and_their_temporaries_swept(tmp_path, photo, name):
    assert len(os.fsencode(name)) == 255
    write_atomic(tmp_path / name, photo)
    assert os.listdir(tmp_path) == [name]
    assert (tmp_path / name).read_bytes() == image_io.encode(photo, name[-4:])
    temporary = files.temporary_name(name)
    assert len(os.fsencode(temporary)) <= 255
    assert os.fsencode(temporary).startswith(b"." + os.fsencode(name)[:200])
    (tmp_path / temporary).write_bytes(b"left by a killed run")
    assert files.remove_stale_temporaries(tmp_path, image_io.IMAGE_EXTENSIONS) == [tmp_path / temporary]
    assert os.listdir(tmp_path) == [name]


@pytest.mark.skipif(os.name != "posix", reason="needs fcntl locks")
def test_the_temporary_of_a_name_with_a_newline_is_swept(tmp_path):
    temporary = tmp_path / files.temporary_name("new\nline.png")
    temporary.write_bytes(b"left by a killed run")
    assert files.remove_stale_temporaries(tmp_path, image_io.IMAGE_EXTENSIONS) == [temporary]


def test_short_names_keep_their_whole_name_in_the_temporary():
    import re

    assert re.fullmatch(r"\.a\.png\.[a-z0-9]{8}\.part", files.temporary_name("a.png"))
    long_extension = "a." + "x" * 252
    assert len(os.fsencode(files.temporary_name(long_extension))) == 255


def mixed_folder(folder):
    """A folder holding the cases of the one extension rule: a.png, b.ppm and c.gif are listed;
    d.img (PNG bytes under an extension outside IMAGE_EXTENSIONS), .hidden.png and notes.txt
    are not. Every image is 32x32; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in ["a.png", "b.ppm", "c.gif", "d.img", ".hidden.png"]:
        image = rng.integers(0, 256, (32, 32, 3), np.uint8)
        (folder / name).write_bytes(encode(image, ".png" if name.endswith(".img") else
                                           os.path.splitext(name)[1]))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_one_extension_set_lists_ppm_and_gif_but_not_hidden_or_unknown(tmp_path):
    folder = mixed_folder(tmp_path / "in")
    assert {".ppm", ".gif"} <= image_io.IMAGE_EXTENSIONS
    assert [p.name for p in image_io.list_images(folder)] == ["a.png", "b.ppm", "c.gif"]
    assert [p.name for p in image_io.list_files(folder)] == ["a.png", "b.ppm", "c.gif", "d.img",
                                                             "notes.txt"]
    for name in ["b.ppm", "c.gif", "d.img"]:  # all decodable: the rule is by name alone
        assert read_bgr(folder / name).shape == (32, 32, 3)


def test_list_images_order_recursion_and_exclusion(tmp_path, photo):
    root = tmp_path / "in"
    for rel in ["b.png", "A.JPG", "sub/x.png", "a-b/z.png", "out/w.png", ".git/y.png",
                "sub/.h/v.png"]:
        write_atomic(root / rel, photo)
    (root / "folder.png").mkdir()  # a folder with an image name is not a file
    top = ["A.JPG", "b.png"]
    assert [p.relative_to(root).as_posix() for p in image_io.list_images(root)] == top
    # a folder's own files first, then its visible sub-folders in name order
    assert [p.relative_to(root).as_posix()
            for p in image_io.list_images(root, recursive=True, exclude=root / "out")] == \
        top + ["a-b/z.png", "sub/x.png"]
    assert "out/w.png" in [p.relative_to(root).as_posix()
                           for p in image_io.list_images(root, recursive=True)]


def test_listing_a_missing_or_unreadable_folder_is_one_line(tmp_path, monkeypatch):
    with pytest.raises(ImageError, match="^no such folder$"):
        image_io.list_images(tmp_path / "missing")
    with pytest.raises(ImageError, match="^no such folder$"):
        image_io.list_images(mixed_folder(tmp_path / "in") / "a.png")

    def refuse(path="."):  # as for a folder without read permission (root would read it)
        raise PermissionError(13, "Permission denied", os.fspath(path))

    monkeypatch.setattr(os, "listdir", refuse)
    for recursive in (False, True):
        with pytest.raises(ImageError, match=r"^unreadable folder \(Permission denied\)$"):
            image_io.list_images(tmp_path / "in", recursive)


def test_write_text_atomic_replaces_whole_files_only(tmp_path):
    path = tmp_path / "sub" / "notes.md"
    files.write_text_atomic(path, "première\n")
    assert path.read_bytes() == "première\n".encode("utf-8")
    assert path.stat().st_mode & 0o777 == 0o644
    files.write_text_atomic(path, "second\n")
    assert path.read_text(encoding="utf-8") == "second\n"
    with pytest.raises(RuntimeError):
        with files.atomic_file(path) as (f, tmp):
            f.write(b"half")
            assert tmp.parent == path.parent and tmp.name.startswith(".notes.md.")
            raise RuntimeError("killed mid-write")
    assert path.read_text(encoding="utf-8") == "second\n"
    assert [p.name for p in path.parent.iterdir()] == ["notes.md"]
    with pytest.raises(OSError):
        files.write_text_atomic(path / "below_a_file.txt", "x")


def test_declared_size_reads_jpeg_2000_and_sizes_over_pillows_own_limit(photo, capfd):
    """Pillow's parsers read the header only: a JPEG 2000 header is read too, and a header
    over Pillow's decompression-bomb limit still gives its size (for `pixel_limit` to judge),
    without loading Pillow at import or printing its warnings about damaged files."""
    import subprocess
    import sys

    ok, jp2 = cv2.imencode(".jp2", np.tile(photo, (2, 2, 1)))
    assert ok and image_io.declared_size(jp2.tobytes()) == (64, 48)
    assert image_io.declared_size(png_header_only(20000, 30000)) == (20000, 30000)
    tiff = bytearray(encode(photo, ".tif"))
    tiff[-6:] = b"\xff" * 6  # a damaged directory at the end
    image_io.declared_size(bytes(tiff))
    assert "Warning" not in capfd.readouterr().err
    code = "import sys, whitebox.base.image_io; print('PIL' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True).stdout.strip() == "False"
