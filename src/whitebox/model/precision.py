"""What runs here: the one capability table of runtime x precision x hardware, and the
precisions' dtypes.

fp32 is the reference's precision and the default. bf16 and fp16 run only the networks'
convolutions lower; the input, the guided filter and the mapping to bytes stay float32 (the
filter divides by a local variance plus eps=5e-3, which bfloat16's 8-bit mantissa cannot
resolve). A runtime runs a precision of its row of `whitebox.model.RUNTIME_PRECISIONS` where
the hardware computes it natively (`supports`: elsewhere bfloat16 is emulated through float32,
slower than float32, and TF's CPU float16 convolutions are scalar fallbacks). `choose` settles
a request for `auto`, the command lines, the web page and training alike.
"""
import importlib.util

import tensorflow as tf

from whitebox.base import notice
from whitebox.base.cpuinfo import CPU_BF16_FLAGS, cpu_flags
from whitebox.base.errors import UsageError
from whitebox.model import PRECISIONS, RUNTIME_PRECISIONS

DTYPES = dict(zip(PRECISIONS, (tf.float32, tf.bfloat16, tf.float16)))
REQUIRES = {"tf": (), "openvino": ("openvino",), "onnxruntime": ("onnxruntime", "tf2onnx")}
INSTALL_HINT = "pip install -r requirements-runtimes.txt"


class RuntimeUnavailable(UsageError):
    """A runtime asked for by name that is not installed."""


def missing(runtime):
    """The packages `runtime` needs that are not installed (found without importing them)."""
    return [name for name in REQUIRES[runtime] if importlib.util.find_spec(name) is None]


def installed(runtime):
    return not missing(runtime)


def gpu_compute_capabilities():
    """[(major, minor)] for each visible GPU TF can use ((0, 0) where TF does not say)."""
    return [tuple(tf.config.experimental.get_device_details(device).get("compute_capability",
                                                                        (0, 0)))
            for device in tf.config.list_physical_devices("GPU")]


def supports(runtime, precision):
    """(runs, where or why not): whether `runtime` runs `precision` natively here: bf16 on a
    CPU with AVX512-BF16 or AMX-BF16, or for TF a GPU of compute capability 8.0+; fp16 on TF
    with a GPU; int8 on OpenVINO with NNCF."""
    if precision not in RUNTIME_PRECISIONS[runtime]:
        if precision == "int8":
            return False, "int8 runs on --runtime openvino only"
        return False, f"{runtime} on this project runs {'/'.join(RUNTIME_PRECISIONS[runtime])}"
    if precision == "fp32":
        return True, "float32"
    if precision == "int8":
        if importlib.util.find_spec("nncf") is None:
            return False, f"needs nncf, which is not installed: {INSTALL_HINT}"
        return True, "generator quantized by NNCF"
    gpus = gpu_compute_capabilities() if runtime == "tf" else []
    if precision == "fp16":
        if gpus:
            return True, "GPU"
        return False, "needs a GPU (TF's float16 convolutions on CPU are slow fallbacks)"
    if any(cap >= (8, 0) for cap in gpus):
        return True, "GPU with bfloat16 (compute capability 8.0+)"
    flags = cpu_flags() & set(CPU_BF16_FLAGS)
    if flags and not gpus:
        return True, "CPU with " + "/".join(sorted(flags)).upper()
    gpu = ", or a GPU of compute capability 8.0+" if runtime == "tf" else ""
    return False, f"needs a CPU with AVX512-BF16 or AMX-BF16{gpu}"


def choose(runtime, precision, warn=notice):
    """(runtime, precision) that run here for the requested ones: 'auto' takes the first
    installed runtime that runs `precision` natively, else the first installed. A named runtime
    not installed raises RuntimeUnavailable; a precision that cannot run falls back to fp32
    with one line through `warn`.
    """
    if runtime == "auto":
        present = [name for name in RUNTIME_PRECISIONS if installed(name)]
        runtime = next((name for name in present if supports(name, precision)[0]), present[0])
    elif missing(runtime):
        raise RuntimeUnavailable(f"--runtime {runtime} needs {' and '.join(missing(runtime))}, "
                                 f"which is not installed: {INSTALL_HINT}")
    ok, why = supports(runtime, precision)
    if not ok:
        where = "" if runtime == "tf" else f" with {runtime}"
        warn(f"precision {precision} unavailable{where} ({why}); using fp32")
        precision = "fp32"
    return runtime, precision


def runnable(precisions):
    """[(precision, where)]: those of `precisions` that an installed runtime runs natively
    here, so that `choose('auto', precision)` runs them without a fallback."""
    found = []
    for precision in precisions:
        native = [why for name in RUNTIME_PRECISIONS if installed(name)
                  for ok, why in [supports(name, precision)] if ok]
        found += [(precision, native[0])] if native else []
    return found


def resolve_xla(xla, precision, warn=notice):
    """Whether the training steps compile with XLA: `xla`, except in bf16 or fp16 without a
    GPU, where XLA's CPU compiler rejects the low-precision backward pass: then False, after
    one line through `warn`."""
    if not xla or precision == "fp32" or gpu_compute_capabilities():
        return xla
    warn(f"xla unavailable with precision {precision} on a CPU (XLA's CPU compiler rejects "
         "its backward pass); using xla off")
    return False
