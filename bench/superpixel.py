"""Milliseconds per 256x256 image for the two structure representations (whitebox.model.superpixel).

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/superpixel.py [--batch 16] [--repeats 5] [--n-jobs N]

For each variant ('slic', 'selective' with seg_num=200, power=1.2):
- serial: one image at a time in this process; first call, then the median of --repeats rounds
  over the batch (steady state), as wall-clock and as this process's CPU time (the latter is
  less disturbed by other work on the machine);
- pool: the whole batch through superpixel_batch's worker pool (n_jobs from --n-jobs, default
  one worker per usable CPU); first call with no pool yet (it includes starting the workers),
  then the median of --repeats calls.
Each entry gives ms per image; pool entries also give ms per batch. For 'selective', the time
of scikit-image's felzenszwalb alone (serial) is given too: that step is kept as it is.

Inputs: the 256x256 arrays of ../shared/golden/superpixel when present (repeated and shifted to
fill the batch), otherwise synthetic images. Timing depends on the machine and its load (the
load average is printed): compare numbers taken on the same machine and in the same conditions.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from joblib import effective_n_jobs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from skimage.segmentation import felzenszwalb  # noqa: E402

from whitebox.base.cpuinfo import cpu_info  # noqa: E402
from whitebox.model import superpixel  # noqa: E402

GOLDEN = REPO.parent / "shared" / "golden" / "superpixel"


def _synthetic(seed, size):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([np.sin(6 * xx + seed), np.cos(5 * yy - seed), xx * yy * 2 - 1], axis=-1) * 0.8
    for _ in range(6):
        cy, cx, r = rng.uniform(0, 1, 3) * (1, 1, 0.25)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(-0.9, 0.9, 3)
    img += rng.normal(0, 0.03, img.shape)
    return np.clip(img, -1, 1).astype(np.float32)


def load_batch(batch, size=256):
    files = sorted(GOLDEN.glob(f"*{size}.npz")) if GOLDEN.is_dir() else []
    images = [np.load(f)["input"] for f in files]
    images = [im for im in images if im.shape == (size, size, 3)]
    source = "shared golden inputs" if images else "synthetic"
    if not images:
        images = [_synthetic(seed, size) for seed in range(4)]
    out = [np.roll(images[k % len(images)], 11 * (k // len(images)), axis=1) for k in range(batch)]
    return np.stack(out).astype(np.float32), source


def _ms(seconds, count=1):
    return round(1000.0 * seconds / count, 2)


def bench_variant(method, batch, repeats, n_jobs):
    one = superpixel.slic_superpixel if method == "slic" else superpixel.selective_adacolor
    n = len(batch)

    start = time.perf_counter()
    one(batch[0])
    serial_first = time.perf_counter() - start
    rounds, cpu_rounds = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for image in batch:
            one(image)
        rounds.append(time.perf_counter() - start)
        cpu_rounds.append(time.process_time() - cpu_start)
    serial_steady = statistics.median(rounds)
    serial_cpu = statistics.median(cpu_rounds)

    superpixel.shutdown_pool()
    start = time.perf_counter()
    superpixel.superpixel_batch(batch, method, n_jobs)
    pool_first = time.perf_counter() - start
    calls = []
    for _ in range(repeats):
        start = time.perf_counter()
        superpixel.superpixel_batch(batch, method, n_jobs)
        calls.append(time.perf_counter() - start)
    pool_steady = statistics.median(calls)
    return {
        "serial_first_call_ms_per_image": _ms(serial_first),
        "serial_steady_ms_per_image": _ms(serial_steady, n),
        "serial_steady_cpu_ms_per_image": _ms(serial_cpu, n),
        "pool_first_call_ms_per_batch": _ms(pool_first),
        "pool_first_call_ms_per_image": _ms(pool_first, n),
        "pool_steady_ms_per_batch": _ms(pool_steady),
        "pool_steady_ms_per_image": _ms(pool_steady, n),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=None, help="pool workers (default: usable CPUs)")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    batch, source = load_batch(args.batch, args.size)
    result = {
        "image": f"{args.size}x{args.size}",
        "batch": args.batch,
        "repeats": args.repeats,
        "inputs": source,
        "pool_workers": effective_n_jobs(-1 if args.n_jobs is None else args.n_jobs),
        "cpus": os.cpu_count(),
        "cpu": cpu_info(),
        "machine": platform.processor() or platform.machine(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
    }
    for method in ("slic", "selective"):
        result[method] = bench_variant(method, batch, args.repeats, args.n_jobs)
    # scikit-image's Felzenszwalb segmentation alone: the part of 'selective' kept as is.
    start = time.perf_counter()
    for image in batch:
        felzenszwalb(image, scale=10, sigma=0.8, min_size=100)
    result["selective"]["of_which_felzenszwalb_ms_per_image"] = _ms(time.perf_counter() - start, len(batch))
    superpixel.shutdown_pool()
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
