"""The colour photos that scikit-image ships, as BGR images: the demo's and the web page's
sample photos, and a short clip panning across one of them."""
from fractions import Fraction
from pathlib import Path

import cv2

from whitebox.base.files import atomic_file
from whitebox.base.image_io import write_atomic

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


def write_sample_clip(path, fps=24, seconds=2, size=(256, 384)):
    """Write a pan across the astronaut photo (`seconds` at `fps`, frames of HxW `size`) as
    H.264 in the container that the extension of `path` names (.mp4, .mov or .mkv),
    atomically; returns the number of frames. Raises OSError when it cannot be written."""
    import av

    from whitebox.infer.video import CONTAINERS

    path = Path(path)
    photo = sample_photo("astronaut")  # 512x512
    (height, width), frames = size, fps * seconds
    with atomic_file(path) as (_, tmp), \
            av.open(str(tmp), "w", format=CONTAINERS[path.suffix.lower()]) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            top = (photo.shape[0] - height) * i // (frames - 1)
            left = (photo.shape[1] - width) * i // (frames - 1)
            frame = av.VideoFrame.from_ndarray(
                photo[top:top + height, left:left + width].copy(), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return frames

