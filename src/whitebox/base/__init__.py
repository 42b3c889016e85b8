"""The common floor. This face holds OpenCV's pixel limit without loading OpenCV, so that
--help can show it: the variable OpenCV reads once, when it loads, and its default; and
`notice`, where the library's one-line notices go when the caller passes no `warn`."""
import logging

PIXEL_LIMIT_ENV = "OPENCV_IO_MAX_IMAGE_PIXELS"
OPENCV_PIXEL_LIMIT = 1 << 30

# The 'whitebox' logger's warning: Python prints it on stderr (the bare line until something
# configures logging; importing apache_beam does, adding "WARNING:whitebox:").
notice = logging.getLogger("whitebox").warning
