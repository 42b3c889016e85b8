"""Inference speed: generator + guided filter against the machine's float32 matmul rate.

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/inference.py [--weights PATH] [--photos DIR]

- per size (256x256 and 720x1280): images/s, megapixels/s, achieved GFLOP/s of the generator
  (249,216 FLOPs per pixel) and its ratio to the matmul GFLOP/s measured in the same run;
- a folder of 20 photos end to end (read, cartoonize, write) through cartoonize.py's loop, and
  through a serial loop like the reference's (read, run, write, one after another);
- with --memory-megapixels A B ...: peak resident memory of `cartoonize.py --max-short-side 0
  --format png --runtime tf` on one JPEG photo of each size (a sample photo scaled up), in a
  fresh process each, and the bytes per pixel between the smallest and the largest.
Random weights unless --weights is given: speed and memory do not depend on the values.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from whitebox.base.quiet_tf import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from whitebox.base.cpuinfo import cpu_info  # noqa: E402
from whitebox.base.image_io import read_bgr, write_atomic  # noqa: E402
from whitebox.infer.batch import plan_jobs, run_plan  # noqa: E402
from whitebox.infer.inference import Cartoonizer  # noqa: E402
from whitebox.infer.samples import sample_photo  # noqa: E402
from whitebox.model.checkpoints import load_generator  # noqa: E402
from whitebox.model.network import Generator  # noqa: E402

FLOPS_PER_PIXEL = 249_216
# Runs cartoonize.py (argv after the script's path) and prints its peak resident set in kB.
PEAK_RSS_CHILD = ("import resource, runpy, sys\n"
                  "sys.argv = sys.argv[1:]\n"
                  "try:\n"
                  "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
                  "finally:\n"
                  "    print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
                  "          file=sys.stderr)\n")


def best_time(fn, repeats):
    """Smallest wall time of `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(n=2048, repeats=5):
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    seconds = best_time(lambda: tf.linalg.matmul(a, b).numpy(), repeats)
    return 2 * n**3 / seconds / 1e9


def size_rates(cartoonizer, height, width, repeats):
    photo = np.random.default_rng(0).uniform(-1, 1, (height, width, 3)).astype(np.float32)
    seconds = best_time(lambda: cartoonizer.run_float(photo), repeats)
    pixels = height * width
    return {"images_per_s": round(1 / seconds, 3),
            "megapixels_per_s": round(pixels / seconds / 1e6, 3),
            "generator_gflops": round(pixels * FLOPS_PER_PIXEL / seconds / 1e9, 1)}


def folder_rates(cartoonizer, photos):
    """Seconds for the photos through run_plan and through a plain serial loop."""
    with tempfile.TemporaryDirectory() as tmp:
        plan = plan_jobs([photos], Path(tmp) / "ours", fmt="png")
        count = len(plan.jobs)
        cartoonizer.cartoonize(read_bgr(plan.jobs[0].source))  # warm-up
        start = time.perf_counter()
        run_plan(plan, cartoonizer.cartoonize, progress=False)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        for job in plan_jobs([photos], Path(tmp) / "serial", fmt="png").jobs:
            write_atomic(job.target, cartoonizer.cartoonize(read_bgr(job.source)))
        serial = time.perf_counter() - start
    return {"images": count, "seconds_ours": round(ours, 2),
            "seconds_serial_loop": round(serial, 2), "speedup": round(serial / ours, 3)}


def make_photos(folder, count=20):
    """Copy ../shared test photos (or random images) up to `count` files."""
    shared = REPO.parent / "shared" / "images"
    sources = sorted(shared.glob("*/*.jpg")) if shared.exists() else []
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        if sources:
            data = sources[i % len(sources)].read_bytes()
            (folder / f"{i:02d}{sources[i % len(sources)].suffix}").write_bytes(data)
        else:
            write_atomic(folder / f"{i:02d}.png", rng.integers(0, 256, (720, 960, 3), np.uint8))
    return folder


def full_resolution_memory(prefix, megapixels, folder):
    """Peak resident memory of cartoonize.py at full resolution (tiled) on one photo per size
    (`megapixels`, 4:3, multiples of 8) with the checkpoint `prefix`, and bytes per pixel."""
    rows = {}
    for mp in sorted(megapixels):
        height = int((mp * 1e6 * 3 / 4) ** 0.5) // 8 * 8
        width = height * 4 // 3 // 8 * 8
        photo = folder / f"{mp}mp.jpg"
        write_atomic(photo, cv2.resize(sample_photo("chelsea"), (width, height),
                                       interpolation=cv2.INTER_CUBIC))
        out = folder / f"out{mp}"
        child = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_CHILD, str(REPO / "cartoonize.py"), "-i", str(photo),
             "-o", str(out), "--max-short-side", "0", "--format", "png", "--runtime", "tf",
             "--weights", str(prefix), "--offline", "--quiet"],
            capture_output=True, text=True, check=False)
        peak = [line for line in child.stderr.splitlines() if line.startswith("peak_kb ")]
        if child.returncode or not peak:
            raise SystemExit(f"cartoonize.py failed on {photo.name}: {child.stderr[-500:]}")
        rows[f"{width}x{height}"] = {"pixels": width * height,
                                     "peak_rss_mb": round(int(peak[-1].split()[1]) / 1024, 1)}
    small, large = rows[min(rows, key=lambda k: rows[k]["pixels"])], rows[max(
        rows, key=lambda k: rows[k]["pixels"])]
    if large is not small:
        rows["bytes_per_pixel"] = round((large["peak_rss_mb"] - small["peak_rss_mb"]) * 2**20
                                        / (large["pixels"] - small["pixels"]), 1)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="checkpoint (default: random weights)")
    p.add_argument("--photos", help="folder of photos (default: 20 made from ../shared)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory-megapixels", type=float, nargs="+", metavar="MP",
                   help="measure full-resolution peak memory at these sizes (e.g. 4 16)")
    p.add_argument("--skip-speed", action="store_true",
                   help="skip the speed measurements (with --memory-megapixels)")
    args = p.parse_args()

    generator = Generator()
    if args.weights:
        load_generator(generator, args.weights)
    cartoonizer = Cartoonizer(generator)
    result = {"device": "cpu", "cpu": cpu_info(), "threads": os.cpu_count()}
    if not args.skip_speed:
        speed(result, cartoonizer, args)
    if args.memory_megapixels:
        with tempfile.TemporaryDirectory() as tmp:
            prefix = args.weights or tf.train.Checkpoint(generator=generator).write(
                str(Path(tmp) / "random"))
            result["full_resolution_memory"] = full_resolution_memory(
                prefix, args.memory_megapixels, Path(tmp))
    print(json.dumps(result, indent=1))


def speed(result, cartoonizer, args):
    """Add the matmul rate, the rates per size and the folder's times to `result`."""
    matmul = matmul_gflops()
    result.update(matmul_gflops=round(matmul, 1), flops_per_pixel=FLOPS_PER_PIXEL)
    for h, w in [(256, 256), (720, 1280)]:
        rates = size_rates(cartoonizer, h, w, args.repeats)
        rates["ratio_to_matmul"] = round(rates["generator_gflops"] / matmul, 3)
        result[f"{h}x{w}"] = rates
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(args.photos) if args.photos else make_photos(Path(tmp) / "photos")
        result["folder"] = folder_rates(cartoonizer, photos)


if __name__ == "__main__":
    main()
