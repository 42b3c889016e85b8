"""The Beam pipeline on the DirectRunner (2 worker processes) against cartoonize.py.

Prints one JSON object. Run from the repository root, with requirements-beam.txt installed:
    python bench/beam.py [--weights PATH] [--photos DIR] [--quick]

Both commands run as fresh processes on the same photos (20 made from ../shared unless
--photos), one after the other, with --format png; the wall time of each includes its start-up
(TensorFlow import, weights, and for Beam its worker processes). Also says whether the two
wrote byte-identical outputs. --quick: 2 tiny images instead, to check that the bench runs.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from inference import make_photos  # noqa: E402  (bench/inference.py)

from whitebox.base.cpuinfo import cpu_info  # noqa: E402
from whitebox.base.image_io import write_atomic  # noqa: E402

OFFICIAL = REPO.parent / "shared" / "weights" / "whitebox_official"
WORKERS = 2


def tiny_photos(folder, count=2):
    """`count` random 32x32 PNGs."""
    rng = np.random.default_rng(0)
    for i in range(count):
        write_atomic(folder / f"{i:02d}.png", rng.integers(0, 256, (32, 32, 3), np.uint8))
    return folder


def timed(command):
    """Wall seconds of `command` (a list) run from the repository root; stops on failure."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return seconds


def rate(count, seconds):
    return {"seconds": round(seconds, 2), "images_per_s": round(count / seconds, 3)}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help=f"checkpoint (default: {OFFICIAL} when present, else "
                                     f"cartoonize.py's default)")
    p.add_argument("--photos", help="folder of photos (default: 20 made from ../shared)")
    p.add_argument("--quick", action="store_true", help="2 tiny images: check that it runs")
    args = p.parse_args()
    weights = args.weights or (str(OFFICIAL) if OFFICIAL.exists() else None)
    weight_args = ["--weights", weights] if weights else []

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.photos:
            photos = Path(args.photos)
        elif args.quick:
            photos = tiny_photos(tmp / "photos")
        else:
            photos = make_photos(tmp / "photos")
        count = sum(1 for f in photos.iterdir() if f.is_file())
        cli_out, beam_out = tmp / "cli", tmp / "beam"
        cli = timed([sys.executable, "cartoonize.py", "--input", str(photos), "--output",
                     str(cli_out), "--format", "png", "--quiet", *weight_args])
        pipeline = timed([sys.executable, "cartoonize_beam.py", "--input", f"{photos}/*",
                          "--output", str(beam_out), "--format", "png", *weight_args,
                          "--direct_running_mode", "multi_processing",
                          "--direct_num_workers", str(WORKERS)])
        names = sorted(f.name for f in cli_out.iterdir())
        identical = names == sorted(f.name for f in beam_out.glob("*.png")) and all(
            (cli_out / n).read_bytes() == (beam_out / n).read_bytes() for n in names)
    print(json.dumps({"cpu": cpu_info(), "photos": count, "quick": args.quick,
                      "weights": weights or "default",
                      "cartoonize_py": rate(count, cli),
                      f"beam_direct_multiprocess_{WORKERS}_workers": rate(count, pipeline),
                      "outputs_identical": identical}, indent=1))


if __name__ == "__main__":
    main()
