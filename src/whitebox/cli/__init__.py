"""What the command lines share, before TensorFlow and OpenCV load: a parser whose usage errors
take one line, `run_command`, and the checks of a few options."""
import argparse
import os
import signal
import sys

from whitebox.base import PIXEL_LIMIT_ENV
from whitebox.base.errors import (
    WhiteboxError,
    display_path,
    one_line,
    output_problem,  # noqa: F401 (re-exported for the CLIs)
)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line, 'PROG: error: ... (see --help)', exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def path_argument(text):
    """An argparse type refusing an empty path (which would mean the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (for the current folder, say '.')")
    return text


def set_pixel_limit(argv):
    """Put the value of --max-pixels N where OpenCV reads its limit (call it before OpenCV
    loads); the parser checks the value."""
    for arg, following in zip(argv, [*argv[1:], ""]):
        name, _, value = arg.partition("=")
        if name == "--max-pixels" and (value or following).isdigit():
            os.environ[PIXEL_LIMIT_ENV] = value or following


def say(line, stdout=False):
    """A command line's line, on stderr (`stdout`: on stdout), above any progress bar."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout if stdout else sys.stderr)


def run_command(main, prog, note=""):
    """`main()`'s exit code: a WhiteboxError becomes one line 'PROG: error: MESSAGE' and its
    `exit_code`; Ctrl-C becomes 130 and one line, 'interrupted', the interrupt's own message
    (e.g. where to resume) and `note` (none where its `reported` is true), no traceback."""
    try:
        return main()
    except WhiteboxError as err:
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # more Ctrl-C while exiting: no traceback
        if not getattr(err, "reported", False):
            print(": ".join(["interrupted", *filter(None, [str(err), note])]), file=sys.stderr)
        return 130


def script_write(write, target):
    """0 once `write()` has written `target` and its line (if any) is printed; an OSError
    becomes a WhiteboxError naming `target`."""
    try:
        done = write()
    except OSError as err:
        raise WhiteboxError(f"cannot write {display_path(target)}: {err.strerror or err}") \
            from None
    if done:
        print(done)
    return 0
