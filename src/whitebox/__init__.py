"""whitebox: a TensorFlow 2 reimplementation of White-box Cartoonization (Wang & Yu, CVPR 2020).

Every image tensor in this package is BGR (OpenCV's channel order), float32, in [-1, 1] unless a
docstring says otherwise.
"""
from whitebox.base.privacy import keep_local

keep_local()
