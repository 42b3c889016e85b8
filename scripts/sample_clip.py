"""Write a short clip made from scikit-image's astronaut photo: a 2-second pan, 24 fps, H.264.

usage: python scripts/sample_clip.py [OUT.mp4]      (default samples/clip.mp4)
Then: python cartoonize.py --input samples/clip.mp4 --output samples/cartoons
"""
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
from skimage import data

FPS, SECONDS = 24, 2
HEIGHT, WIDTH = 256, 384


def main(out):
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # 512x512
    frames = FPS * SECONDS
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(frames):
            top = (photo.shape[0] - HEIGHT) * i // (frames - 1)
            left = (photo.shape[1] - WIDTH) * i // (frames - 1)
            frame = av.VideoFrame.from_ndarray(
                photo[top:top + HEIGHT, left:left + WIDTH].copy(), format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    print(f"{frames} frames at {FPS} fps in {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "samples/clip.mp4")
