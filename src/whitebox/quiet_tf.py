"""Import TensorFlow without its start-up chatter, for the command lines.

TensorFlow prints oneDNN and CUDA notices to fd 2 before its logging is configured, so
TF_CPP_MIN_LOG_LEVEL cannot hide them. They are captured here and shown only if the import
fails. The process's temporary files go to its own folder from then on (scratch.private_tempdir).
"""
import os
import sys
import tempfile

from whitebox.scratch import private_tempdir


def import_tensorflow():
    """Import and return tensorflow with fd 2 captured during the import, after moving the
    process's temporary files into `private_tempdir`."""
    private_tempdir()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
