"""The common floor. This face holds OpenCV's pixel limit without loading OpenCV, so that
--help can show it: the variable OpenCV reads once, when it loads, and its default."""
PIXEL_LIMIT_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
OPENCV_PIXEL_LIMIT = 1 << 30
