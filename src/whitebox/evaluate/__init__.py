"""FID/KID, the paper's protocol and ablations. This face holds what --help shows, without
TensorFlow, SciPy or OpenCV: the images per Inception call."""
DEFAULT_BATCH = 32
