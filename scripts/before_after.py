"""Put a photo and its cartoon side by side, as the README's picture (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

EPILOG = ("scripts/demo.sh makes samples/photos/chelsea.png and "
          "samples/cartoons/chelsea.png")
JPEG_QUALITY = 80


def parse_args(argv=None):
    from whitebox.cli import OneLineParser, path_argument

    p = OneLineParser(prog="before_after.py", epilog=EPILOG,
                      description="Put a photo and its cartoon side by side (the cartoon is the "
                                  "photo's top-left crop to multiples of 8) in one JPEG, "
                                  f"quality {JPEG_QUALITY}.")
    for name, text in [("photo", "the photo"), ("cartoon", "its cartoon from cartoonize.py"),
                       ("out", "the JPEG to write, ending with .jpg or .jpeg (replaced if it "
                               "exists; never the photo or the cartoon)")]:
        p.add_argument(name, type=path_argument, help=text)
    args = p.parse_args(argv)
    if Path(args.out).suffix.lower() not in (".jpg", ".jpeg"):
        p.error(f"{args.out}: the name must end with .jpg or .jpeg")
    if Path(args.out).resolve() in (Path(args.photo).resolve(), Path(args.cartoon).resolve()):
        p.error(f"{args.out} would overwrite an input: choose another name")
    return args


def _run(args):
    """0 written; an image that cannot be read, or the result not written, raises (exit 1)."""
    import cv2
    import numpy as np

    from whitebox.base.errors import display_path
    from whitebox.base.files import write_bytes_atomic
    from whitebox.base.image_io import ImageError, read_bgr
    from whitebox.cli import script_write

    images = []
    for path in (args.photo, args.cartoon):
        try:
            images.append(read_bgr(path))
        except ImageError as err:
            raise ImageError(f"{display_path(path)}: {err}") from None
    before, after = images
    h, w = after.shape[:2]
    if before.shape[0] < h or before.shape[1] < w:
        raise ImageError(f"{display_path(args.cartoon)} is larger than "
                         f"{display_path(args.photo)}")
    _, data = cv2.imencode(".jpg", np.hstack([before[:h, :w], after]),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return script_write(lambda: write_bytes_atomic(args.out, data.tobytes()), args.out)


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(parse_args(argv)), "before_after.py")


if __name__ == "__main__":
    sys.exit(main())
