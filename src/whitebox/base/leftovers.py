"""Folders a killed process of ours left behind, found by a name that carries its process id."""
import os
import shutil
from pathlib import Path


def process_alive(pid):
    """Whether a process with id `pid` runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_process_folders(parent, pattern):
    """Delete the folders in `parent` whose names fullmatch the compiled regex `pattern` (with
    a group 'pid') and whose process no longer runs; symbolic links and files are left alone.
    Returns the removed paths."""
    removed = []
    try:
        entries = sorted(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if (match and entry.is_dir() and not entry.is_symlink()
                and not process_alive(int(match["pid"]))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
