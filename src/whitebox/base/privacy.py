"""Nothing leaves the machine and nothing is written outside our cache, whichever dependency
loads: `keep_local` runs when the package is imported, before any of it loads, and child
processes (Beam's workers) inherit it.

- ONNX Runtime, Gradio, Hugging Face Hub: their documented switches, TELEMETRY_OFF.
- OpenVINO's converter and NNCF send to Google Analytics through ``openvino_telemetry`` and fall
  back to a silent stub when it cannot be imported: it is made unimportable (OpenVINO's own
  opt-out writes a consent file into ``~/intel``, for every program of the user).
- Keras (``keras.json``) and Matplotlib (font cache, loaded by NNCF) write under HOME:
  CACHE_FOLDERS move them into ``files.home_dir()`` unless the user set the variables.
"""
import os
import sys

from whitebox.base.files import home_dir

# Set whatever the user's environment says.
TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                 "HF_HUB_DISABLE_TELEMETRY": "1"}
OPENVINO_TELEMETRY = "openvino_telemetry"
CACHE_FOLDERS = {"KERAS_HOME": "keras", "MPLCONFIGDIR": "matplotlib"}


def keep_local():
    """Effective for a dependency not loaded yet; safe to call again."""
    os.environ.update(TELEMETRY_OFF)
    if OPENVINO_TELEMETRY not in sys.modules:
        sys.modules[OPENVINO_TELEMETRY] = None  # import raises ImportError: the stub is used
    if all(name in os.environ for name in CACHE_FOLDERS):
        return
    for name, folder in CACHE_FOLDERS.items():
        os.environ.setdefault(name, str(home_dir() / folder))
