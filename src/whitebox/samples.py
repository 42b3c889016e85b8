"""The colour photos that scikit-image ships, as BGR images: the demo's and the web page's
sample photos."""
from pathlib import Path

import cv2

from whitebox.image_io import write_atomic

SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def sample_photo(name):
    """scikit-image's photo `name` (one of SAMPLE_PHOTOS) as HxWx3 uint8 BGR."""
    from skimage import data

    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"unknown sample photo {name!r}; choose from {', '.join(SAMPLE_PHOTOS)}")
    return cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)


def write_sample_photos(folder):
    """Write every sample photo to `folder` as NAME.png (atomically); returns the paths."""
    paths = [Path(folder) / f"{name}.png" for name in SAMPLE_PHOTOS]
    for name, path in zip(SAMPLE_PHOTOS, paths):
        write_atomic(path, sample_photo(name))
    return paths
