"""The errors the library raises for the command lines to report. The library never prints for
the user and never returns exit codes: it raises one of these, and `whitebox.cli.run_command`
turns it into one line on stderr and the exit code below. A message names the file, folder or
option at fault and the reason, on one line.
"""


class WhiteboxError(Exception):
    """Base of the library's errors; `exit_code` is the command line's exit status for it."""
    exit_code = 1


class UsageError(WhiteboxError):
    """An option, a combination of options or a configuration that cannot run (exit 2)."""
    exit_code = 2


class InputError(WhiteboxError):
    """An input the user gave (image, video, data list, cache file) cannot be used (exit 1:
    a run over many inputs reports it per file and goes on)."""
    exit_code = 1


class WeightsError(WhiteboxError):
    """Weights that are missing, damaged or of the wrong shape: nothing can run (exit 2)."""
    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, after the library has finished what it can (a summary, a checkpoint): the
    message says what was kept and how to resume (exit 130)."""
    exit_code = 130
