"""Reading and writing images as OpenCV does (BGR uint8), with clear errors and atomic writes.

Every reader here returns an HxWx3 uint8 BGR array, as `cv2.imread(path)` gives the reference,
or raises ImageError whose message is one line saying why.
"""
import contextlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff",
                    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".sr", ".ras"}

PNG_END = b"IEND\xaeB`\x82"
JPEG_START_OF_SCAN, JPEG_END = b"\xff\xda", b"\xff\xd9"


class ImageError(Exception):
    """An input or output image that cannot be used; str() is a one-line reason."""


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries (libpng, libjpeg) that print to fd 2 while decoding bad files."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _truncation(data):
    """A reason if a PNG or JPEG byte string ends before its end marker, else None."""
    if data.startswith(b"\x89PNG") and PNG_END not in data[-64:]:
        return "truncated PNG (no IEND chunk at the end)"
    if data.startswith(b"\xff\xd8"):
        if data.rfind(JPEG_END) < data.find(JPEG_START_OF_SCAN):
            return "truncated JPEG (no end-of-image marker after the image data)"
    return None


def to_bgr_uint8(image):
    """Convert a decoded image of any common layout to HxWx3 uint8 BGR.

    grey (HxW or HxWx1) -> replicated to 3 channels; BGRA -> composited over white;
    uint16 -> divided by 257 and rounded (65535 -> 255); float in [0, 1] -> times 255.
    """
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float32) / 257.0)
    elif image.dtype.kind == "f":
        image = np.clip(image, 0.0, 1.0) * 255.0
    image = np.clip(image, 0, 255).astype(np.uint8) if image.dtype != np.uint8 else image
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        blended = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.round(blended).astype(np.uint8)
    if channels == 3:
        return image
    raise ImageError(f"unsupported number of channels: {channels}")


def read_bgr(path):
    """Read `path` as HxWx3 uint8 BGR, or raise ImageError with the reason.

    8-bit colour and grey files go through `cv2.IMREAD_COLOR`, exactly as the reference reads
    them (EXIF orientation applied); 16-bit and alpha files are converted by `to_bgr_uint8`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
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
    reason = _truncation(data)
    if reason:
        raise ImageError(reason)
    buffer = np.frombuffer(data, np.uint8)
    with _quiet_stderr():
        raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ImageError("not a decodable image (corrupt, or a format OpenCV cannot read)")
        plain = raw.dtype == np.uint8 and (raw.ndim == 2 or raw.shape[2] == 3)
        if plain:
            raw = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        elif raw.ndim == 3 and raw.shape[2] == 4:
            pass  # alpha: composite below; EXIF orientation is rare in such files
        else:
            raw = cv2.imdecode(buffer, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    if raw is None or raw.size == 0:
        raise ImageError("not a decodable image")
    return to_bgr_uint8(raw)


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
