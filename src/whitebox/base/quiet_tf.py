"""Import TensorFlow without its start-up chatter, for the command lines.

TensorFlow prints oneDNN and CUDA notices to fd 2 before its logging is configured, so
TF_CPP_MIN_LOG_LEVEL cannot hide them. They are captured here and shown only if the import
fails (not when Ctrl-C interrupts it: that is one line). The process's temporary files go to
its own folder from then on (files.private_tempdir).
"""
import contextlib
import os
import sys
import tempfile

from whitebox.base.files import private_tempdir


@contextlib.contextmanager
def captured_stderr():
    """Send fd 2 (so also C libraries' output and that of child processes started meanwhile)
    to an unnamed temporary file while the block runs; yields the file, open for reading."""
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
    """Import and return tensorflow with fd 2 captured during the import, after moving the
    process's temporary files into `private_tempdir`."""
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
