"""Images read and written as OpenCV does: every reader returns HxWx3 uint8 BGR, as the
reference's `cv2.imread(path)`, or raises ImageError saying why in one line. An image whose
header declares more than `pixel_limit()` pixels is refused before decoding. Also: listing the
images of a folder.
"""
import contextlib
import functools
import io
import os
import re
import stat
import threading
import warnings
from pathlib import Path

import cv2
import numpy as np

from whitebox.base import OPENCV_PIXEL_LIMIT, PIXEL_LIMIT_ENV
from whitebox.base.errors import InputError, one_line
from whitebox.base.files import write_bytes_atomic

# What a folder contributes to every command (a file named on its own is decoded whatever its
# extension).
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".gif",
                    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".sr", ".ras"}

_PIXEL_LIMIT_SYNTAX = re.compile(r"(\d+)(|KB|Kb|kb|MB|Mb|mb)")
# Pillow's names of the formats OpenCV decodes whose headers `declared_size` reads.
SIZED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM", "SUN", "JPEG2000")


class ImageError(InputError):
    """An input or output image that cannot be used; str() is a one-line reason."""


_quiet_lock = threading.Lock()
_quiet_users = 0
_quiet_saved = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries (libpng, libjpeg) that print to fd 2 while decoding bad files. fd 2
    is redirected when the first thread enters and restored when the last leaves: threads
    saving and restoring it each on its own could, overlapping, leave it on /dev/null."""
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


def pixel_limit():
    """The most pixels (width x height) an image header may declare: OpenCV's own limit,
    PIXEL_LIMIT_ENV read as OpenCV reads it (once, when it loads: N, NKB or NMB for N times 1,
    1024 or 1024**2), else its default."""
    match = _PIXEL_LIMIT_SYNTAX.fullmatch(os.environ.get(PIXEL_LIMIT_ENV, ""))
    if not match:
        return OPENCV_PIXEL_LIMIT
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024 ** 2}[match[2][:1].lower()]


class _Parsed(Exception):
    """Raised by a `_probes` opener with the (width, height) it parsed."""


@functools.cache
def _probes():
    """(accept, opener) for each of SIZED_FORMATS: Pillow's header parser, made to raise
    _Parsed with the size it read before Pillow checks it (which refuses an empty image without
    its size). PIL.Image.open would refuse one over its own pixel limit without its size."""
    from PIL import (  # here, not at import: --help never loads Pillow
        Image,
        JpegImagePlugin,
    )

    Image.init()
    # Damaged EXIF or APNG chunks would print a warning: such files get OpenCV's verdict.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.\w+ImagePlugin")
    probes = []
    for kind in SIZED_FORMATS:
        opener, accept = Image.OPEN[kind]
        if not isinstance(opener, type):  # JPEG's factory function
            opener = JpegImagePlugin.JpegImageFile

        class Probe(opener):
            def _open(self):
                super()._open()
                raise _Parsed(self.size)

        probes.append((accept, Probe))
    return probes


def declared_size(data):
    """(width, height) that an image file's header declares, read by Pillow without decoding;
    None for formats outside SIZED_FORMATS and for damaged or too short headers. A PNG's size
    is read here: Pillow checks the header's checksum before it gives the size."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    for accept, probe in _probes():
        if accept(data[:16]) is True:
            try:
                probe(io.BytesIO(data))
            except _Parsed as parsed:
                return parsed.args[0]
            except Exception:  # what Pillow raises for a damaged header varies by format
                return None
    return None


def _check_size(data):
    """The declared (width, height) or None; ImageError for an empty or too large one."""
    size = declared_size(data)
    if size is None:
        return None
    width, height = size
    if width == 0 or height == 0:
        raise ImageError(f"the header declares an empty image ({width} x {height})")
    limit = pixel_limit()
    if width * height > limit:
        raise ImageError(f"image too large ({width} x {height} declared); the limit is {limit} "
                         f"pixels ({PIXEL_LIMIT_ENV})")
    return size


def _opencv_failure(err, size):
    """A one-line ImageError for a cv2.error raised while decoding."""
    text = one_line(err, "all")
    if "CV_IO_MAX_IMAGE" in text:
        declared = f"{size[0]} x {size[1]} declared; " if size else ""
        return ImageError(f"image too large ({declared}above the limit OpenCV was loaded with: "
                          f"set {PIXEL_LIMIT_ENV} before starting)")
    return ImageError(f"OpenCV cannot decode it ({text.partition('error: ')[2] or text})")


def _truncation(data):
    """A reason if a PNG or JPEG byte string ends before its end marker, else None."""
    if data.startswith(b"\x89PNG") and b"IEND\xaeB`\x82" not in data[-64:]:
        return "truncated PNG (no IEND chunk at the end)"
    # JPEG: the end-of-image marker FFD9 must follow the start of scan FFDA
    if data.startswith(b"\xff\xd8") and data.rfind(b"\xff\xd9") < data.find(b"\xff\xda"):
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
    """The bytes of `path`, or ImageError saying why not. Only a regular file is read: a named
    pipe would block (hence the non-blocking open), a device such as /dev/zero never end."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ImageError("not a regular file (a pipe, device or socket)")
            data = f.read()
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
    """An image file's bytes -> HxWx3 uint8 BGR by `cv2.IMREAD_COLOR`, as the reference: grey
    replicated, 16 bits shifted to 8, EXIF orientation applied, alpha dropped (the colour under
    transparent pixels kept) unless alpha="white" blends it over white."""
    size = _check_size(data)
    reason = _truncation(data)
    if reason:
        raise ImageError(reason)
    buffer = np.frombuffer(data, np.uint8)
    with _quiet_stderr():
        try:
            image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
            if image is None or image.size == 0:
                raise ImageError("not a decodable image (corrupt, or a format OpenCV cannot "
                                 "read)")
            if alpha == "white":
                raw = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
                if raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
                    image = composite_over_white(raw)
        except cv2.error as err:
            raise _opencv_failure(err, size) from None
    return image


def read_bgr(path, alpha="ignore"):
    """`decode_bgr(read_file(path), alpha)`: HxWx3 uint8 BGR, or ImageError."""
    return decode_bgr(read_file(path), alpha)


def encode(image, ext):
    """HxWx3 uint8 BGR -> bytes in the format of extension `ext` ('.png', ...), quietly."""
    with _quiet_stderr():
        try:
            ok, encoded = cv2.imencode(ext, image)
        except cv2.error:
            ok = False
    if not ok:
        raise ImageError(f"OpenCV cannot write the '{ext}' format")
    return encoded.tobytes()


def write_atomic(path, image):
    """`encode` by the extension of `path` (none: PNG), then `write_bytes_atomic` (OSError)."""
    path = Path(path)
    write_bytes_atomic(path, encode(image, path.suffix.lower() or ".png"))


def list_files(folder, recursive=False, exclude=None):
    """The regular files of `folder` not hidden (no name starting with '.'), as Paths: a
    folder's files by name, then with `recursive` its readable sub-folders in name order,
    except `exclude` (by resolved path). ImageError when `folder` itself cannot be listed."""
    folder = Path(folder)
    exclude = Path(exclude).resolve() if exclude is not None else None
    if not folder.is_dir():
        raise ImageError("no such folder")
    try:
        names = os.listdir(folder)
    except OSError as err:
        raise ImageError(f"unreadable folder ({err.strerror or err})") from None
    walker = os.walk(folder) if recursive else [(folder, [], names)]
    found = []
    for root, dirs, names in walker:
        root = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or (root / d).resolve() != exclude))
        found += [root / name for name in sorted(names)
                  if not name.startswith(".") and (root / name).is_file()]
    return found


def list_images(folder, recursive=False, exclude=None):
    """`list_files` restricted to names whose extension (any case) is in IMAGE_EXTENSIONS."""
    return [path for path in list_files(folder, recursive, exclude)
            if path.suffix.lower() in IMAGE_EXTENSIONS]


def to_unit_range(image):
    """uint8 BGR [..., 3] (an image HxWx3 or a batch NxHxWx3) -> float32 of the same shape and
    channel order in [-1, 1], by x / 127.5 - 1: what the generator takes."""
    return image.astype(np.float32) / 127.5 - 1.0


def to_uint8(output):
    """float BGR [..., 3] in about [-1, 1], as the generator gives it -> uint8 of the same shape
    and channel order, by clip((y + 1) * 127.5, 0, 255) truncated (not rounded), as the
    reference writes its outputs."""
    return np.clip((output + 1.0) * 127.5, 0, 255).astype(np.uint8)
