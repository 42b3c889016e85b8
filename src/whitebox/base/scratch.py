"""Temporary folders that a killed process may leave behind. Each is locked (flock on the folder)
while the process that made it uses it; one found unlocked, named as its maker names them and
older than a grace period is removed by the next process that looks.

`private_tempdir` gives each process of the project such a folder for all its temporary files.
"""
import atexit
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: abandoned temporary folders are left alone
    fcntl = None

# A folder younger than this may belong to a process that has not locked it yet.
GRACE_SECONDS = 60
# `private_tempdir`'s folders: the prefix, then mkdtemp's 8 random characters.
PRIVATE_PREFIX = "whitebox-"
PRIVATE_NAME = re.compile(re.escape(PRIVATE_PREFIX) + r"[a-z0-9_]{8}\.tmp")

_private = None


def lock_folder(folder):
    """An open descriptor of `folder` holding an exclusive lock, or None without fcntl: while
    it is open, `remove_abandoned` in another process leaves the folder alone."""
    if fcntl is None:
        return None
    fd = os.open(folder, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def remove_abandoned(parent, name):
    """Delete the folders in `parent` whose names match the regular expression `name` in full,
    older than GRACE_SECONDS and not locked (`lock_folder`) by a process at work. Symbolic
    links and files are left alone."""
    if fcntl is None:
        return
    cutoff = time.time() - GRACE_SECONDS
    try:
        paths = list(Path(parent).iterdir())
    except OSError:
        return
    for path in paths:
        if not name.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
            continue
        try:
            if path.stat().st_mtime > cutoff:
                continue
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # locked: its process is still at work
            pass
        finally:
            os.close(fd)


def private_tempdir():
    """This process's own temporary folder, made on the first call: ``whitebox-XXXXXXXX.tmp``
    in the system's temporary folder, locked, and removed when the process exits. From then on
    Python's `tempfile` (TensorFlow's AutoGraph files, Gradio's uploads and state) and child
    processes ($TMPDIR) put their temporary files there, so a process killed with -9 leaves
    one folder, which the next process removes (`remove_abandoned`). Returns its Path."""
    global _private
    if _private is None:
        parent = tempfile.gettempdir()
        remove_abandoned(parent, PRIVATE_NAME)
        folder = tempfile.mkdtemp(prefix=PRIVATE_PREFIX, suffix=".tmp", dir=parent)
        atexit.register(_remove_private, folder, lock_folder(folder), os.getpid())
        tempfile.tempdir = os.environ["TMPDIR"] = folder
        _private = Path(folder)
    return _private


def _remove_private(folder, lock, owner):
    """At exit: remove the private folder, in the process that made it only (a forked child
    that exits leaves it to its parent)."""
    if os.getpid() != owner:
        return
    shutil.rmtree(folder, ignore_errors=True)
    if lock is not None:
        os.close(lock)
