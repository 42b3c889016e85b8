"""Inference speed: generator + guided filter against the machine's float32 matmul rate.

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/inference.py [--weights PATH] [--photos DIR]

- per size (256x256 and 720x1280): images/s, megapixels/s, achieved GFLOP/s of the generator
  (249,216 FLOPs per pixel) and its ratio to the matmul GFLOP/s measured in the same run;
- a folder of 20 photos end to end (read, cartoonize, write) through cartoonize.py's loop, and
  through a serial loop like the reference's (read, run, write, one after another).
Random weights unless --weights is given: speed does not depend on the values.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from whitebox.quiet_tf import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from whitebox.batch import plan_jobs, run_plan  # noqa: E402
from whitebox.checkpoints import load_generator  # noqa: E402
from whitebox.cpuinfo import cpu_info  # noqa: E402
from whitebox.image_io import read_bgr, write_atomic  # noqa: E402
from whitebox.inference import Cartoonizer  # noqa: E402
from whitebox.network import Generator  # noqa: E402

FLOPS_PER_PIXEL = 249_216


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


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="checkpoint (default: random weights)")
    p.add_argument("--photos", help="folder of photos (default: 20 made from ../shared)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    generator = Generator()
    if args.weights:
        load_generator(generator, args.weights)
    cartoonizer = Cartoonizer(generator)
    matmul = matmul_gflops()
    result = {"device": "cpu", "cpu": cpu_info(), "threads": os.cpu_count(),
              "matmul_gflops": round(matmul, 1),
              "flops_per_pixel": FLOPS_PER_PIXEL}
    for h, w in [(256, 256), (720, 1280)]:
        rates = size_rates(cartoonizer, h, w, args.repeats)
        rates["ratio_to_matmul"] = round(rates["generator_gflops"] / matmul, 3)
        result[f"{h}x{w}"] = rates
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(args.photos) if args.photos else make_photos(Path(tmp) / "photos")
        result["folder"] = folder_rates(cartoonizer, photos)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
