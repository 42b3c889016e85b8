"""Reading and writing images as OpenCV does (BGR uint8), with clear errors; listing the images of
a folder; atomic writes of every file the project writes for the user.

Every reader here returns an HxWx3 uint8 BGR array, as `cv2.imread(path)` gives the reference,
or raises ImageError whose message is one line saying why.

Pixel limit: an image whose header declares more than `pixel_limit()` pixels is refused before
decoding. The limit is OpenCV's own: the environment variable OPENCV_IO_MAX_IMAGE_PIXELS
(default 2**30), which OpenCV reads once, when it is loaded; to raise it, set it before then.
"""
import contextlib
import os
import re
import secrets
import stat
import struct
import threading
from pathlib import Path

import cv2
import numpy as np

from whitebox.base import OPENCV_PIXEL_LIMIT, PIXEL_LIMIT_ENV
from whitebox.base.errors import InputError, one_line
from whitebox.base.errors import display_path  # noqa: F401 (re-exported)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale temporary files are left alone
    fcntl = None

# The one set of image extensions: what a folder contributes to cartoonize.py, make-lists and
# evaluate.py (a file named on its own is decoded whatever its extension).
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".gif",
                    ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".sr", ".ras"}

PNG_END = b"IEND\xaeB`\x82"
JPEG_START_OF_SCAN, JPEG_END = b"\xff\xda", b"\xff\xd9"
_PIXEL_LIMIT_SYNTAX = re.compile(r"(\d+)(|KB|Kb|kb|MB|Mb|mb)")
# atomic_file's temporary files (and Beam's): `temporary_name` of the output name
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part", re.DOTALL)  # names hold \n too
# The longest file name, in bytes, that common file systems take (ext4, XFS, Btrfs, APFS, NTFS)
NAME_MAX = 255


class ImageError(InputError):
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


def pixel_limit():
    """The most pixels (width x height) an image header may declare: OPENCV_IO_MAX_IMAGE_PIXELS
    read as OpenCV reads it (a whole number, optionally followed by KB or MB: times 1024 or
    1024**2), else OpenCV's default."""
    match = _PIXEL_LIMIT_SYNTAX.fullmatch(os.environ.get(PIXEL_LIMIT_ENV, ""))
    if not match:
        return OPENCV_PIXEL_LIMIT
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024 ** 2}[match[2][:1].lower()]


def _jpeg_size(data):
    """(width, height) from a JPEG's start-of-frame segment, or None."""
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        elif marker == 0xDA:  # image data before any frame header
            return None
        else:
            i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _tiff_size(data):
    """(width, height) from the first image directory of a TIFF, or None."""
    order = "<" if data[:2] == b"II" else ">"
    (directory,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[directory:directory + 2])
    size = {}
    for k in range(count):
        entry = data[directory + 2 + 12 * k:directory + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            fmt = order + ("H" if kind == 3 else "I")
            size[tag] = struct.unpack(fmt, entry[8:8 + struct.calcsize(fmt)])[0]
    return (size[256], size[257]) if len(size) == 2 else None


_PNM_HEADER = re.compile(rb"P[1-6](?:\s|#[^\r\n]*[\r\n])+(\d{1,12})(?:\s|#[^\r\n]*[\r\n])+(\d{1,12})")


def declared_size(data):
    """(width, height) that an image file's header declares, read without decoding it; None
    for formats not parsed here (JPEG 2000, ...) and for headers too short to say.

    Covers PNG, JPEG, BMP, GIF, WebP, TIFF, PNM (P1-P6) and Sun raster.
    """
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data.startswith(b"BM"):
            if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 core header
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
                width, height = struct.unpack("<HH", data[26:30])
                return width & 0x3FFF, height & 0x3FFF
            if chunk == b"VP8L" and data[20] == 0x2F:
                (bits,) = struct.unpack("<I", data[21:25])
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return (int.from_bytes(data[24:27], "little") + 1,
                        int.from_bytes(data[27:30], "little") + 1)
            return None
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if data.startswith(b"\x59\xa6\x6a\x95"):
            return struct.unpack(">II", data[4:12])
        match = _PNM_HEADER.match(data[:4096])
        if match:
            return int(match.group(1)), int(match.group(2))
    except (struct.error, IndexError):
        return None
    return None


def _check_size(data):
    """Raise ImageError when the header declares an empty image or more than `pixel_limit()`
    pixels; returns the declared (width, height) or None."""
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
    """The bytes of `path`, or ImageError naming why they cannot be had. Only a regular file
    is read: a named pipe would block, a device such as /dev/zero never end."""
    try:
        # Non-blocking open: a pipe without a writer returns at once, to be refused below.
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
    """Decode an image file's bytes to HxWx3 uint8 BGR, or raise ImageError with the reason.

    Decoding is `cv2.IMREAD_COLOR`, exactly as the reference's `cv2.imread(path)`: grey is
    replicated to three channels, 16-bit values are shifted to 8 bits, EXIF orientation is
    applied, and an alpha channel is dropped (the colour under transparent pixels is kept).
    alpha="white" instead blends images with an alpha channel over white. Images declaring
    more than `pixel_limit()` pixels are refused before decoding.
    """
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
    """Encode `image` (HxWx3 uint8 BGR) in the format of extension `ext` ('.png', ...) -> bytes.

    OpenCV's own messages are silenced; raises ImageError when it cannot write the format.
    """
    with _quiet_stderr():
        try:
            ok, encoded = cv2.imencode(ext, image)
        except cv2.error:
            ok = False
    if not ok:
        raise ImageError(f"OpenCV cannot write the '{ext}' format")
    return encoded.tobytes()


def temporary_name(name):
    """A new hidden name to write the file `name` under before renaming it: "." + name + "." +
    8 random characters (a-z, 0-9) + ".part". When that would exceed NAME_MAX bytes, the part
    of `name` before its extension is cut (at a character boundary) to fit, so any legal output
    name can be written; the extension stays, for `remove_stale_temporaries`."""
    stem, ext = os.path.splitext(name)
    room = NAME_MAX - len(".") - len(".12345678.part")
    if len(os.fsencode(ext)) > room // 2:  # no extension worth keeping
        stem, ext = name, ""
    while len(os.fsencode(stem + ext)) > room:
        stem = stem[:-1]
    return f".{stem}{ext}.{secrets.token_hex(4)}.part"


def _create_temporary(path):
    """(fd, path) of a new file under `temporary_name` beside `path`, readable by its owner
    only until it is finished."""
    while True:
        tmp = path.parent / temporary_name(path.name)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:  # 2**-32 per try: draw again
            continue


@contextlib.contextmanager
def atomic_file(path):
    """Yield (binary file, its path) for the new content of `path`: a temporary file in the same
    folder (`temporary_name`), renamed over `path` when the block ends without an error and
    deleted otherwise, so a crash never leaves a half-written output. The folder is created if
    needed. The file stays locked until the block ends (writers that open its path themselves
    are not affected), so that `remove_stale_temporaries` can tell one left by a killed run from
    one still being written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            yield f, Path(tmp)
            f.flush()
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data):
    """Write the bytes `data` to `path` through `atomic_file`."""
    with atomic_file(path) as (f, _):
        f.write(data)


def write_text_atomic(path, text):
    """Write the string `text` to `path` as UTF-8 through `atomic_file`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_atomic(path, image):
    """Encode `image` (HxWx3 uint8 BGR) by the extension of `path` (none: PNG) and write it
    with `write_bytes_atomic`. Raises ImageError, or OSError when the file cannot be written."""
    path = Path(path)
    write_bytes_atomic(path, encode(image, path.suffix.lower() or ".png"))


def remove_stale_temporaries(folder, extensions=IMAGE_EXTENSIONS):
    """Delete the temporary files that `atomic_file` left in `folder` when its process was killed
    (named by `temporary_name` for a file whose extension is in `extensions`,
    regular files, not locked by a writer still at work). Returns the removed paths; anything
    else is left alone."""
    removed = []
    if fcntl is None or not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        match = _TEMP_NAME.fullmatch(name)
        path = Path(folder) / name
        if not match or Path(match["name"]).suffix.lower() not in extensions:
            continue
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            with open(path, "rb") as f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                os.unlink(path)
            removed.append(path)
    return removed


def list_files(folder, recursive=False, exclude=None):
    """The visible regular files under `folder` as Paths: names starting with '.' (files and
    folders) are skipped; with `recursive` the whole tree, except the folder `exclude` (found by
    its resolved path; sub-folders that cannot be read are passed over). Deterministic order: a
    folder's files by name, then its sub-folders one by one in name order. Raises ImageError
    ("no such folder", "unreadable folder (why)") for `folder` itself."""
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
