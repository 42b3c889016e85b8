"""What the command lines share before TensorFlow and OpenCV load: a parser whose usage errors
take one line, an exception's message cut to one line, Ctrl-C as one line and exit code 130,
and for cartoonize.py --max-pixels put where OpenCV reads its limit and the check of --output.
"""
import argparse
import os
import signal
import sys
from pathlib import Path


class OneLineParser(argparse.ArgumentParser):
    """Usage errors on one line ('PROG: error: ... (see --help)', exit 2), without the usage
    text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def path_argument(text):
    """An argparse type for path options: the path as given, refusing an empty one (which the
    file system functions would take as the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path (for the current folder, say '.')")
    return text


def one_line(err):
    """The first line of an exception's message, or its class name when it has none."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def set_pixel_limit(argv):
    """Put the value of --max-pixels N into OPENCV_IO_MAX_IMAGE_PIXELS before OpenCV is loaded:
    OpenCV reads its limit from there once, when it loads. The parser checks the value."""
    for arg, following in zip(argv, [*argv[1:], ""]):
        name, _, value = arg.partition("=")
        if name == "--max-pixels" and (value or following).isdigit():
            os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = value or following


def output_problem(output, option="--output"):
    """Why the `option` path cannot be a folder (it or a folder above it is a file or a broken
    symbolic link), or None."""
    from whitebox.base.image_io import display_path

    for path in [Path(output), *Path(output).parents]:
        if path.is_dir():
            return None
        if path.exists() or path.is_symlink():
            where = "" if path == Path(output) else f": {display_path(path)}"
            what = "a file" if path.exists() else "a broken symbolic link"
            return f"{option} {display_path(output)}{where} is {what}, not a folder"
    return None


def run_command(main, prog=None, note=""):
    """`main()`'s exit code, with the library's errors mapped for every command line: a
    WhiteboxError becomes one line 'PROG: error: MESSAGE' on stderr and its `exit_code` (1 or
    2); Ctrl-C (KeyboardInterrupt, base.errors.Interrupted) becomes 130 with one line,
    'interrupted', then the interrupt's own message (e.g. where a run can resume) and `note`,
    and no traceback. An interrupt whose `reported` attribute is true has said everything."""
    from whitebox.base.errors import WhiteboxError

    prog = prog or Path(sys.argv[0]).name
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
    """A sample script's exit code for `write()`, which writes `target` and returns a line to
    print (or None): 0 once it has, 1 with one line on stderr when it raises OSError."""
    from whitebox.base.image_io import display_path

    try:
        done = write()
    except OSError as err:
        print(f"error: cannot write {display_path(target)}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    if done:
        print(done)
    return 0
