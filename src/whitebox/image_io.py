"""Reading and writing images as OpenCV does (BGR uint8), with clear errors and atomic writes.

Every reader here returns an HxWx3 uint8 BGR array, as `cv2.imread(path)` gives the reference,
or raises ImageError whose message is one line saying why.
"""
import contextlib
import os
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff",
                    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".sr", ".ras"}

PNG_END = b"IEND\xaeB`\x82"
JPEG_START_OF_SCAN, JPEG_END = b"\xff\xda", b"\xff\xd9"


class ImageError(Exception):
    """An input or output image that cannot be used; str() is a one-line reason."""


_quiet_lock = threading.Lock()
_quiet_users = 0
_quiet_saved = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries (libpng, libjpeg) that print to fd 2 while decoding bad files.

    Thread-safe: fd 2 is redirected when the first thread enters and restored when the last
    one leaves (each thread saving and restoring fd 2 on its own would, when two overlap,
    leave fd 2 on /dev/null for good).
    """
    global _quiet_users, _quiet_saved
    with _quiet_lock:
        if _quiet_users == 0:
            try:
                saved = os.dup(2)
                null = os.open(os.devnull, os.O_WRONLY)
            except OSError:
                saved = None
            else:
                os.dup2(null, 2)
                os.close(null)
            _quiet_saved = saved
        _quiet_users += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_users -= 1
            if _quiet_users == 0 and _quiet_saved is not None:
                os.dup2(_quiet_saved, 2)
                os.close(_quiet_saved)
                _quiet_saved = None


def _truncation(data):
    """A reason if a PNG or JPEG byte string ends before its end marker, else None."""
    if data.startswith(b"\x89PNG") and PNG_END not in data[-64:]:
        return "truncated PNG (no IEND chunk at the end)"
    if data.startswith(b"\xff\xd8"):
        if data.rfind(JPEG_END) < data.find(JPEG_START_OF_SCAN):
            return "truncated JPEG (no end-of-image marker after the image data)"
    return None


def composite_over_white(bgra):
    """HxWx4 uint8 or uint16 BGRA -> HxWx3 uint8 BGR, blended over a white background."""
    scale = 65535.0 if bgra.dtype == np.uint16 else 255.0
    pixels = bgra.astype(np.float32) / scale
    alpha = pixels[:, :, 3:4]
    blended = pixels[:, :, :3] * alpha + (1.0 - alpha)
    return np.round(blended * 255.0).astype(np.uint8)


def read_file(path):
    """The bytes of `path`, or ImageError naming why they cannot be had."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise ImageError("is a folder, not a file")
    except PermissionError:
        raise ImageError("permission denied")
    except FileNotFoundError:
        raise ImageError("no such file")
    except OSError as err:
        raise ImageError(f"unreadable ({err.strerror or err})")
    if not data:
        raise ImageError("empty file (0 bytes)")
    return data


def decode_bgr(data, alpha="ignore"):
    """Decode an image file's bytes to HxWx3 uint8 BGR, or raise ImageError with the reason.

    Decoding is `cv2.IMREAD_COLOR`, exactly as the reference's `cv2.imread(path)`: grey is
    replicated to three channels, 16-bit values are shifted to 8 bits, EXIF orientation is
    applied, and an alpha channel is dropped (the colour under transparent pixels is kept).
    alpha="white" instead blends images with an alpha channel over white.
    """
    reason = _truncation(data)
    if reason:
        raise ImageError(reason)
    buffer = np.frombuffer(data, np.uint8)
    with _quiet_stderr():
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            raise ImageError("not a decodable image (corrupt, or a format OpenCV cannot read)")
        if alpha == "white":
            raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
            if raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
                image = composite_over_white(raw)
    return image


def to_unit_range(image):
    """uint8 BGR (any shape) -> float32 in [-1, 1] by x / 127.5 - 1."""
    return image.astype(np.float32) / 127.5 - 1.0


def to_uint8(output):
    """float BGR in about [-1, 1] (any shape) -> uint8 by clip((y + 1) * 127.5, 0, 255),
    truncated."""
    return np.clip((output + 1.0) * 127.5, 0, 255).astype(np.uint8)


def read_bgr(path, alpha="ignore"):
    """`decode_bgr(read_file(path), alpha)`: HxWx3 uint8 BGR, or ImageError."""
    return decode_bgr(read_file(path), alpha)


def write_atomic(path, image):
    """Encode `image` (HxWx3 uint8 BGR) by the extension of `path` and write it atomically.

    The bytes go to a temporary file in the same folder, which is renamed over `path` only
    when complete, so a crash never leaves a half-written output. Raises ImageError.
    """
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    try:
        ok, encoded = cv2.imencode(ext, image)
    except cv2.error:
        ok = False
    if not ok:
        raise ImageError(f"OpenCV cannot write the '{ext}' format")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(encoded.tobytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
