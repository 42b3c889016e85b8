"""Reduced precision (inference and training): which precisions this machine runs well, and
their dtypes.

fp32 is the reference's precision and the default everywhere. At inference bf16 and fp16 run
only the generator's convolutions in the lower precision (training: steps.py); the input, the
guided filter and the mapping back to bytes stay in float32 (the filter divides by a local
variance plus eps=5e-3, which bfloat16's 8-bit mantissa cannot resolve).

A precision is "supported" where the hardware computes it natively:
- bf16: a CPU with AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo), or an NVIDIA GPU of
  compute capability 8.0 or later. Elsewhere TF emulates bfloat16 through float32 conversions,
  which is slower than float32 itself.
- fp16: an NVIDIA GPU (tensor cores from compute capability 7.0). TF's CPU kernels for float16
  convolutions are scalar fallbacks, many times slower than float32.
- int8: never on TensorFlow; `runtimes` runs it on OpenVINO.
An unsupported request falls back to fp32 with a one-line notice (see `resolve_precision`).
"""
import tensorflow as tf

from whitebox.base.cpuinfo import CPU_BF16_FLAGS, cpu_flags
from whitebox.model import PRECISIONS

DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}


def gpu_compute_capabilities():
    """[(major, minor)] for each visible GPU TF can use ((0, 0) where TF does not say)."""
    caps = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        caps.append(tuple(details.get("compute_capability", (0, 0))))
    return caps


def cpu_support(precision):
    """(supported, where) for a CPU runtime (OpenVINO, ONNX Runtime): fp32 everywhere, bf16 on
    a CPU with AVX512-BF16 or AMX-BF16, fp16 nowhere."""
    if precision == "fp32":
        return True, "float32"
    if precision == "bf16":
        flags = cpu_flags() & set(CPU_BF16_FLAGS)
        if flags:
            return True, "CPU with " + "/".join(sorted(flags)).upper()
        return False, "needs a CPU with AVX512-BF16 or AMX-BF16"
    return False, "needs a GPU"


def support(precision):
    """(supported, where): whether `precision` runs natively here, and on what, in words."""
    if precision == "fp32":
        return True, "float32"
    gpus = gpu_compute_capabilities()
    if precision == "bf16":
        if any(cap >= (8, 0) for cap in gpus):
            return True, "GPU with bfloat16 (compute capability 8.0+)"
        if not gpus:
            ok, where = cpu_support("bf16")
            if ok:
                return ok, where
        return False, ("needs a CPU with AVX512-BF16 or AMX-BF16, or a GPU of compute "
                       "capability 8.0+")
    if precision == "fp16":
        if gpus:
            return True, "GPU"
        return False, "needs a GPU (TF's float16 convolutions on CPU are slow fallbacks)"
    if precision == "int8":
        return False, "int8 runs on --runtime openvino only"
    raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")


def resolve_precision(requested, warn=print):
    """The precision to use for `requested`: itself when supported, else 'fp32' after one
    line through `warn` ('precision bf16 unavailable (reason); using fp32')."""
    ok, where = support(requested)
    if ok:
        return requested
    warn(f"precision {requested} unavailable ({where}); using fp32")
    return "fp32"


def resolve_xla(xla, precision, warn=print):
    """Whether the training steps compile with XLA: `xla`, except in bf16 or fp16 without a
    GPU, where XLA's CPU compiler rejects the networks' low-precision backward pass (an
    internal "mixed precision is disallowed" error): then False, after one line through
    `warn`."""
    if not xla or precision == "fp32" or gpu_compute_capabilities():
        return xla
    warn(f"xla unavailable with precision {precision} on a CPU (XLA's CPU compiler rejects "
         "its backward pass); using xla off")
    return False
