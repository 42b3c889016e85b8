"""The common floor. This face holds OpenCV's pixel limit without loading OpenCV, so that
--help can show it: the variable OpenCV reads once, when it loads, and its default; and
`notice`, where the library's one-line notices go when the caller passes no `warn`."""
import logging

PIXEL_LIMIT_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
OPENCV_PIXEL_LIMIT = 1 << 30

# The 'whitebox' logger's warning: printed on stderr as the bare line unless the application
# configures logging.
notice = logging.getLogger("whitebox").warning
