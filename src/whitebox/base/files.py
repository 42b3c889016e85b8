"""Files and folders written under a temporary name, then renamed; the removal of what killed
processes left; this project's cache folder.

A temporary, `temporary_name(name)` beside `name`, is flock-ed by its writer while it works;
`sweep` removes one whose lock is free (a folder only once older than GRACE_SECONDS: it is made,
then locked). Beam's FileSystems writer (serve/beam.py) borrows `temporary_name` only: object
stores have no flock.
"""
import atexit
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: abandoned temporaries are left alone
    fcntl = None

ENV_HOME = "WHITEBOX_HOME"
NAME_MAX = 255  # bytes in a name on ext4, XFS, Btrfs, APFS, NTFS
GRACE_SECONDS = 60
PART = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part", re.DOTALL)
PRIVATE_PREFIX = "whitebox-"
PRIVATE_NAME = re.compile(re.escape(PRIVATE_PREFIX) + r"[a-z0-9_]{8}\.tmp")

_private = None


def home_dir():
    """``$WHITEBOX_HOME`` if set, else ``pooch.os_cache("whitebox-cartoon")`` (on Linux
    ``$XDG_CACHE_HOME/whitebox-cartoon`` or ``~/.cache/whitebox-cartoon``)."""
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    import pooch

    return pooch.os_cache("whitebox-cartoon")


def _fit(name):
    """`name`, or when too long the part before its extension cut (at a character boundary)
    so that `temporary_name` fits NAME_MAX."""
    stem, ext = os.path.splitext(name)
    room = NAME_MAX - len("..12345678.part")
    if len(os.fsencode(ext)) > room // 2:  # no extension worth keeping
        stem, ext = name, ""
    while len(os.fsencode(stem + ext)) > room:
        stem = stem[:-1]
    return stem + ext


def temporary_name(name):
    """A new hidden name (PART) to write `name` under: the extension stays, for
    `remove_stale_temporaries`."""
    return f".{_fit(name)}.{secrets.token_hex(4)}.part"


def _create(path, make):
    """(make(temporary), temporary) for a new `temporary_name` beside `path`."""
    while True:
        tmp = path.parent / temporary_name(path.name)
        try:
            return make(tmp), tmp
        except FileExistsError:  # 2**-32 per try: draw again
            continue


def _flock(fd):
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def lock(path):
    """An open descriptor of `path` holding an exclusive flock: `sweep` leaves `path` alone."""
    fd = os.open(path, os.O_RDONLY)
    _flock(fd)
    return fd


def _abandoned(path, folder):
    """Whether `path` is a regular file (or a folder older than GRACE_SECONDS), not a link,
    whose lock no writer holds."""
    try:
        info = os.lstat(path)
        if not (stat.S_ISDIR if folder else stat.S_ISREG)(info.st_mode) or (
                folder and info.st_mtime > time.time() - GRACE_SECONDS):
            return False
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:  # locked: its writer is at work
        return False
    finally:
        os.close(fd)


def sweep(parent, pattern=PART, folders=False, wanted=lambda match: True):
    """Remove the `_abandoned` files (or `folders`) of `parent` whose names fullmatch `pattern`
    and pass `wanted(match)`; returns their paths by name (none without fcntl)."""
    removed = []
    try:
        names = sorted(os.listdir(parent)) if fcntl is not None else []
    except OSError:
        names = []
    for name in names:
        path, match = Path(parent) / name, pattern.fullmatch(name)
        if match and wanted(match) and _abandoned(path, folders):
            try:
                shutil.rmtree(path) if folders else os.unlink(path)
            except OSError:
                continue
            removed.append(path)
    return removed


def remove_stale_temporaries(folder, extensions):
    """`sweep` the `atomic_file` temporaries of `folder` for names with `extensions` (any
    case)."""
    return sweep(folder, wanted=lambda match: Path(match["name"]).suffix.lower() in extensions)


@contextlib.contextmanager
def atomic_file(path):
    """Yield (binary file, its path): a locked temporary beside `path`, readable by its owner
    only, renamed over `path` with mode 0644 when the block ends without an error, deleted
    otherwise. The folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create(path, lambda p: os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with os.fdopen(fd, "wb") as f:
            _flock(fd)
            yield f, tmp
            f.flush()
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data):
    with atomic_file(path) as (f, _):
        f.write(data)


def write_text_atomic(path, text):
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def staging_folder(path):
    """Yield a new empty locked folder (mode 0700) beside `path`, removed when the block ends;
    first sweep those of `path` that killed processes left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep(path.parent, folders=True, wanted=lambda match: match["name"] == _fit(path.name))
    _, tmp = _create(path, lambda p: os.mkdir(p, 0o700))
    fd = lock(tmp)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)


@contextlib.contextmanager
def atomic_folder(path, replace=True):
    """Yield a `staging_folder`, renamed to `path` when the block ends without an error. A
    non-empty `path` is replaced (`replace`: moved aside, put back if that fails) or else kept:
    a concurrent writer that finished first wins."""
    path = Path(path)
    with staging_folder(path) as tmp:
        yield tmp
        try:
            os.rename(tmp, path)  # over a missing or empty folder
        except OSError:
            if not path.is_dir():
                raise
            if replace:
                old = path.with_name(temporary_name(path.name))
                os.rename(path, old)
                try:
                    os.rename(tmp, path)
                except OSError:
                    os.rename(old, path)
                    raise
                shutil.rmtree(old, ignore_errors=True)


def private_tempdir():
    """This process's own locked temporary folder (PRIVATE_NAME), made on the first call and
    removed at exit. Python's `tempfile` (AutoGraph, Gradio) and child processes ($TMPDIR) then
    write there, so a process killed with -9 leaves one folder, for the next one to `sweep`."""
    global _private
    if _private is None:
        parent = tempfile.gettempdir()
        sweep(parent, PRIVATE_NAME, folders=True)
        folder = tempfile.mkdtemp(prefix=PRIVATE_PREFIX, suffix=".tmp", dir=parent)
        atexit.register(_remove_private, folder, lock(folder), os.getpid())
        tempfile.tempdir = os.environ["TMPDIR"] = folder
        _private = Path(folder)
    return _private


def _remove_private(folder, fd, owner):
    """At exit, in the process that made it only (not a forked child)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def sha256_file(path, digest=None):
    """`digest` (default a new sha256) updated with the file's bytes, 1 MiB at a time."""
    digest = digest or hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest
