"""Write the colour photos that scikit-image ships to a folder, as BGR PNG files (see --help)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _run(argv):
    """0 written; a photo that cannot be written raises (exit 1)."""
    from whitebox.cli import OneLineParser, path_argument

    p = OneLineParser(prog="sample_photos.py", description="Write the colour photos that "
                      "scikit-image ships to a folder, as BGR PNG files (replacing any of the "
                      "same name).")
    p.add_argument("folder", nargs="?", default="samples/photos", type=path_argument,
                   metavar="FOLDER", help="where to write them (default samples/photos)")
    folder = p.parse_args(argv).folder
    from whitebox.base.errors import display_path
    from whitebox.cli import script_write
    from whitebox.infer.samples import write_sample_photos

    return script_write(lambda: f"{len(write_sample_photos(folder))} sample photos in "
                                f"{display_path(folder)}/", folder)


def main(argv=None):
    from whitebox.cli import run_command

    return run_command(lambda: _run(argv), "sample_photos.py")


if __name__ == "__main__":
    sys.exit(main())
