"""Write the colour photos that scikit-image ships to a folder, as BGR PNG files."""
import sys
from pathlib import Path

import cv2
from skimage import data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def main(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        rgb = getattr(data, name)()
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    print(f"{len(PHOTOS)} sample photos in {folder}/")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "samples/photos")
