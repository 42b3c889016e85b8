"""The networks, the white-box representations and the losses. This face holds only the choices
they offer, with no TensorFlow import, so that configuration and --help can name them."""
# How the two calls per graph run of each spectral-norm discriminator advance u.
#   joint: one call on [real; fake], u advances once per discriminator per step, as TF1 did.
#   separate: two calls (real, then fake), u advances twice per step (plain eager semantics).
SN_MODES = ("joint", "separate")
SUPERPIXEL_METHODS = ("slic", "selective")
# Compute precisions of the networks (precision.py); fp32 is the reference's.
PRECISIONS = ("fp32", "bf16", "fp16")
# The runtimes that run the generator and the precisions each runs, in the order `auto` tries
# them (precision.py's capability table; int8: the generator quantized for OpenVINO).
RUNTIME_PRECISIONS = {"openvino": ("fp32", "bf16", "int8"), "onnxruntime": ("fp32",),
                      "tf": PRECISIONS}
