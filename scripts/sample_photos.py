"""Write the colour photos that scikit-image ships to a folder, as BGR PNG files."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from whitebox.samples import write_sample_photos  # noqa: E402


def main(folder):
    paths = write_sample_photos(folder)
    print(f"{len(paths)} sample photos in {folder}/")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "samples/photos")
