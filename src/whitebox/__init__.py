"""whitebox: a TensorFlow 2 reimplementation of White-box Cartoonization (Wang & Yu, CVPR 2020).

Every image tensor in this package is BGR (OpenCV's channel order), float32, in [-1, 1] unless a
docstring says otherwise. The Python API, loaded on first use (`import whitebox` loads no
TensorFlow):

    from whitebox import Cartoonizer
    cartoonizer = Cartoonizer.from_pretrained(runtime="auto")
    cartoon = cartoonizer(bgr_uint8)     # HxWx3 uint8 BGR in, h'xw'x3 uint8 BGR out
"""
from whitebox.base.privacy import keep_local

keep_local()


def __getattr__(name):
    if name != "Cartoonizer":
        raise AttributeError(f"module 'whitebox' has no attribute {name!r}")
    from whitebox.base.quiet_tf import import_tensorflow

    import_tensorflow()
    from whitebox.infer.loader import Cartoonizer

    return Cartoonizer
