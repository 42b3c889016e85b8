"""Put a photo and its cartoon side by side, as the README's picture (JPEG, quality 80).

usage: python scripts/before_after.py PHOTO CARTOON OUT.jpg
(scripts/demo.sh makes samples/photos/chelsea.png and samples/cartoons/chelsea.png)
"""
import sys

import cv2
import numpy as np


def main(photo, cartoon, out):
    before, after = cv2.imread(photo), cv2.imread(cartoon)
    h, w = after.shape[:2]  # the cartoon is the photo's top-left crop to multiples of 8
    cv2.imwrite(out, np.hstack([before[:h, :w], after]), [cv2.IMWRITE_JPEG_QUALITY, 80])


if __name__ == "__main__":
    main(*sys.argv[1:4])
