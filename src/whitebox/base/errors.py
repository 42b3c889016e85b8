"""The errors the library raises instead of printing or returning exit codes, for
`whitebox.cli.run_command` to print as one line and exit with their `exit_code`; a message names
the file, folder or option at fault and the reason. Also helpers that keep a message on one line.
"""
import os
from pathlib import Path


class WhiteboxError(Exception):
    """Base of the library's errors; `exit_code` is the command line's exit status for it."""
    exit_code = 1


class UsageError(WhiteboxError):
    """An option, a combination of options or a configuration that cannot run (exit 2)."""
    exit_code = 2


class InputError(WhiteboxError):
    """An input (image, video, data list, cache file) that cannot be used: a run over many
    reports it per file and goes on."""


class WeightsError(WhiteboxError):
    """Weights that are missing, damaged or of the wrong shape: nothing can run (exit 2)."""
    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, once the library has kept what it can: the message says what, and how to
    resume."""
    exit_code = 130


def one_line(err, keep="first"):
    """An exception's message (or a string) on one line, white space runs made one space: its
    `first` non-empty line, its `last` or `all` of them; the class name when it has none."""
    lines = [" ".join(line.split()) for line in str(err).splitlines() if line.strip()]
    return " ".join({"first": lines[:1], "last": lines[-1:], "all": lines}[keep]) or \
        type(err).__name__


def display_path(path):
    """`path` as one printable line: control characters and bytes invalid in the file system's
    encoding shown as backslash escapes."""
    shown = []
    for ch in os.fsdecode(os.fspath(path)):
        if ch.isprintable():
            shown.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # an undecodable byte, as os.fsdecode keeps it
            shown.append(f"\\x{ord(ch) - 0xdc00:02x}")
        else:
            shown.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(shown)


def output_problem(output, option="--output"):
    """Why the `option` path cannot be a folder (it or one above is a file or a broken link),
    or None."""
    for path in [Path(output), *Path(output).parents]:
        if path.is_dir():
            return None
        if path.exists() or path.is_symlink():
            where = "" if path == Path(output) else f": {display_path(path)}"
            what = "a file" if path.exists() else "a broken symbolic link"
            return f"{option} {display_path(output)}{where} is {what}, not a folder"
    return None
