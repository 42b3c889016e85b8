"""Write a short clip made from scikit-image's astronaut photo (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DESCRIPTION = "Write a 2-second pan across scikit-image's astronaut photo, 24 fps, H.264."
EPILOG = "then: python cartoonize.py --input samples/clip.mp4 --output samples/cartoons"
# Containers that hold the H.264 stream the clip is encoded in.
SUFFIXES = (".mp4", ".mov", ".mkv")


def parse_args(argv=None):
    from whitebox.cli import OneLineParser, path_argument

    p = OneLineParser(prog="sample_clip.py", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("out", nargs="?", default="samples/clip.mp4", type=path_argument,
                   metavar="OUT", help=f"the clip to write, ending with {', '.join(SUFFIXES)} "
                                       f"(default samples/clip.mp4; replaced if it exists)")
    args = p.parse_args(argv)
    if Path(args.out).suffix.lower() not in SUFFIXES:
        p.error(f"{args.out}: the name must end with {', '.join(SUFFIXES)}")
    return args


def _run(out):
    """0 written; a file that cannot be written raises (exit 1)."""
    from whitebox.base.errors import display_path
    from whitebox.cli import script_write
    from whitebox.infer.samples import write_sample_clip

    return script_write(lambda: f"{write_sample_clip(out)} frames in {display_path(out)}", out)


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(parse_args(argv).out), "sample_clip.py")


if __name__ == "__main__":
    sys.exit(main())
