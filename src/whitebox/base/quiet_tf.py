"""Import TensorFlow for the command lines without its oneDNN and CUDA notices, which it prints
to fd 2 before TF_CPP_MIN_LOG_LEVEL applies: they are shown only if the import fails (not on
Ctrl-C: that is one line)."""
import contextlib
import os
import sys
import tempfile

from whitebox.base.files import private_tempdir


@contextlib.contextmanager
def captured_stderr():
    """Yield an unnamed temporary file that fd 2 (C libraries, child processes too) goes to
    while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """tensorflow, imported quietly once the process's temporary files go to
    `private_tempdir`."""
    private_tempdir()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    chatter = b""
    try:
        with captured_stderr() as capture:
            try:
                import tensorflow as tf
            except Exception:
                capture.seek(0)
                chatter = capture.read()
                raise
    finally:
        sys.stderr.write(chatter.decode(errors="replace"))
    return tf
