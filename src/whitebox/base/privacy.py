"""Nothing leaves the machine and nothing is written outside our cache, whichever dependency
loads: the switches are set here, when the package is imported (``whitebox/__init__.py``), so
before any module of the package can load TensorFlow, Keras, OpenVINO, NNCF, ONNX Runtime or
Gradio. Child processes (Beam's workers) inherit the environment and import the package too.

- ONNX Runtime: ``ORT_DISABLE_TELEMETRY=1``, its documented switch, read when it loads (its
  uploader otherwise writes ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` and resolves
  its collector's name).
- OpenVINO's model converter and NNCF: both send events to Google Analytics through the
  optional package ``openvino_telemetry`` and fall back to a stub that sends nothing when it
  cannot be imported; it is made unimportable in this process. OpenVINO's own opt-out
  (``opt_in_out --opt_out``) would write a consent file into ``~/intel`` and change the choice
  for every other program of the user, so it is not used.
- Gradio: ``GRADIO_ANALYTICS_ENABLED=False``; Hugging Face Hub (loaded by Gradio):
  ``HF_HUB_DISABLE_TELEMETRY=1``.
- Keras writes ``keras.json`` into ``$KERAS_HOME`` (else ``~/.keras``) when it loads, and
  Matplotlib (loaded by NNCF) its font cache into ``$MPLCONFIGDIR`` (else ``~/.cache`` and
  ``~/.config``): both point into ``files.home_dir()`` unless the user set them.
"""
import os
import sys

from whitebox.base.files import home_dir

# Set whatever the user's environment says: each turns something off.
TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                 "HF_HUB_DISABLE_TELEMETRY": "1"}
# The package that sends OpenVINO's and NNCF's events.
OPENVINO_TELEMETRY = "openvino_telemetry"
# Folders of files.home_dir() that stand in for the ones dependencies make under HOME,
# unless the user chose another through the variable.
CACHE_FOLDERS = {"KERAS_HOME": "keras", "MPLCONFIGDIR": "matplotlib"}



def keep_local():
    """Turn every dependency's telemetry off and move its files into our cache. Effective for
    a dependency not loaded yet; safe to call again."""
    os.environ.update(TELEMETRY_OFF)
    if OPENVINO_TELEMETRY not in sys.modules:
        sys.modules[OPENVINO_TELEMETRY] = None  # import raises ImportError: the stub is used
    if all(name in os.environ for name in CACHE_FOLDERS):
        return
    for name, folder in CACHE_FOLDERS.items():
        os.environ.setdefault(name, str(home_dir() / folder))
