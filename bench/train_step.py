"""Seconds per adversarial iteration, split into its parts, with a stand-in VGG of real shapes.

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/train_step.py [--configs 4x256,16x256] [--repeats 2]
        [--precisions fp32,bf16,fp16] [--drift-batch 2 --drift-patch 64 --drift-iterations 100]
    .venv/bin/python bench/train_step.py --quick      # checks that it runs: tiny settings

For each precision that runs natively here (the others are listed with the reason) and each
batch x patch configuration (random photos/cartoons, random weights: speed does not depend on
the values), after one warm-up iteration that traces the tf.functions:
- g_forward: generator + guided filter (F_st) alone;
- superpixel: SLIC on that output through whitebox.superpixel (its worker pool), alone;
- g_update: the rest of the G step (losses incl. VGG, backward, Adam) = G step - the two above;
- d_update: the whole D step (its own generator pass with the updated weights, both
  discriminators forward/backward, Adam);
- iteration: G step + D step as the training loop runs them;
- reference_emulated_iteration: the same plus the two pieces of work the reference adds (one
  more generator + guided-filter pass to feed the superpixel step, and the three VGG passes its
  D-step run evaluates only for the summaries), timed in the same process.
- data_path: iterations fed by the training input pipeline (BatchSampler.dataset over PNG
  files on disk, larger than the patch so they are cropped): input_wait_s, the time the loop
  waits for the next batch; superpixel_in_step_s, the time inside the step's superpixel
  numpy_function; host_wait_share, their sum over the iteration's wall time (input wait
  included): the share of the iteration in which the device waits for host work. On a CPU the
  "device" is the same CPU, so this is the host-side share of the iteration.
Times are the minimum over the repeats (the least disturbed on a shared machine).
drift: losses of --drift-iterations iterations from the same seed, weights and batches in each
precision against fp32, at the drift's own (smaller) batch and patch, recorded in the JSON.
The reference (TF 2.15 compat + tf_slim, stand-in VGG) was measured on the project's 2-core CPU
at about 8.5 s per iteration at batch 4 and 35 s at batch 16; `speedup_vs_reference` divides by
those numbers, which is only meaningful on that machine.
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from whitebox.quiet_tf import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from whitebox import data, superpixel, vgg  # noqa: E402
from whitebox.config import PRECISIONS, TrainConfig  # noqa: E402
from whitebox.cpuinfo import cpu_info  # noqa: E402
from whitebox.precision import support  # noqa: E402
from whitebox.steps import AdversarialStep  # noqa: E402

REFERENCE_SECONDS = {4: 8.5, 16: 35.0}   # per iteration, 256x256, measured on the 2-core CPU


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    if isinstance(result, dict):
        [float(v) for v in result.values()]          # wait for the values
    elif hasattr(result, "numpy"):
        result = result.numpy()
    return time.perf_counter() - start, result


def make_trainer(batch, patch, jobs, vgg_model, precision, seed=0):
    config = TrainConfig(vgg="stand-in", batch_size=batch, patch_size=patch,
                         superpixel_jobs=jobs, precision=precision, seed=seed)
    tf.keras.utils.set_random_seed(seed)
    return AdversarialStep(config, vgg_model)


def bench(batch, patch, repeats, jobs, vgg_model, precision, folder):
    trainer = make_trainer(batch, patch, jobs, vgg_model, precision)
    rng = np.random.default_rng(0)
    photo = tf.constant(rng.uniform(-1, 1, [batch, patch, patch, 3]).astype(np.float32))
    cartoon = tf.constant(rng.uniform(-1, 1, [batch, patch, patch, 3]).astype(np.float32))

    # Warm-up: traces every function and starts the superpixel workers.
    _timed(trainer.sample, photo)
    trainer.iteration(photo, cartoon)

    # The work the reference does on top of ours: its D-step session run also evaluates every
    # summary, i.e. three VGG passes (photo, superpixel, output) that the D update ignores.
    summary_vgg = tf.function(lambda p, s, o: vgg_model(tf.concat([p, s, o], axis=0)))
    parts = {k: [] for k in ("g_forward", "superpixel", "g_step", "d_update", "iteration",
                             "summary_vgg")}
    for k in range(repeats + 1):
        t, out = _timed(trainer.sample, photo)
        parts["g_forward"].append(t)
        t, sp = _timed(lambda x: superpixel.superpixel_batch(x, "slic", jobs or None), out)
        parts["superpixel"].append(t)
        t, _ = _timed(summary_vgg, photo, tf.constant(sp), tf.constant(out))
        parts["summary_vgg"].append(t)
        if k == 0:
            for values in parts.values():
                values.clear()          # the first round traced summary_vgg
            continue
        t_g, _ = _timed(trainer.g_step, photo, cartoon)
        t_d, _ = _timed(trainer.d_step, photo, cartoon)
        parts["g_step"].append(t_g)
        parts["d_update"].append(t_d)
        parts["iteration"].append(t_g + t_d)
    # Minimum over repeats: the least disturbed by other processes on a shared machine.
    med = {k: float(np.min(v)) for k, v in parts.items()}
    # The reference's iteration = its extra generator pass (feeding the superpixel step) + our
    # G step + our D step + the summary VGG passes; measured here, on the same machine and run.
    emulated = med["iteration"] + med["g_forward"] + med["summary_vgg"]
    result = {
        "precision": precision, "batch": batch, "patch": patch, "repeats": repeats,
        "g_forward_s": round(med["g_forward"], 3),
        "superpixel_s": round(med["superpixel"], 3),
        "g_update_s": round(med["g_step"] - med["g_forward"] - med["superpixel"], 3),
        "d_update_s": round(med["d_update"], 3),
        "g_step_s": round(med["g_step"], 3),
        "iteration_s": round(med["iteration"], 3),
        "reference_emulated_iteration_s": round(emulated, 3),
        "speedup_vs_reference_emulated": round(emulated / med["iteration"], 2),
    }
    if patch == 256 and batch in REFERENCE_SECONDS:
        result["reference_iteration_s"] = REFERENCE_SECONDS[batch]
        result["speedup_vs_reference"] = round(REFERENCE_SECONDS[batch] / med["iteration"], 2)
    result["data_path"] = data_path(trainer, batch, patch, repeats, folder)
    return result


def write_photos(folder, count, size):
    """`count` smooth BGR PNGs of size x size in `folder` (made if missing); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    paths = []
    for k in range(count):
        image = np.stack([128 + 100 * np.sin(x / (7 + k)), 128 + 100 * np.cos(y / (9 + k)),
                          128 + 80 * np.sin((x + y) / (11 + k))], -1).astype(np.uint8)
        paths.append(str(folder / f"{k:03d}.png"))
        cv2.imwrite(paths[-1], image)
    return paths


def data_path(trainer, batch, patch, repeats, folder):
    """Iterations fed by BatchSampler.dataset from PNG files: how long the loop waits for its
    input, how long the step runs the superpixel numpy_function, and their share of the wall
    time. The first iteration (pipeline start-up) is not counted."""
    lists = {}
    for domain in ("photo_scenery", "cartoon_scenery"):
        lists[domain] = write_photos(folder / f"{batch}x{patch}" / domain, batch, patch + 16)
    sampler = data.BatchSampler(lists, batch, patch, 0, False, True)
    spent = []
    real = superpixel.superpixel_batch

    def timed_superpixel(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    superpixel.superpixel_batch = timed_superpixel
    rows = []
    try:
        batches = iter(sampler.dataset(0, repeats + 1))
        for k in range(repeats + 1):
            start = time.perf_counter()
            item = next(batches)
            waited = time.perf_counter() - start
            spent.clear()
            step, _ = _timed(trainer.iteration, *item[1:])
            if k:
                rows.append((waited, sum(spent), waited + step))
    finally:
        superpixel.superpixel_batch = real
    waited, sp, wall = (float(np.min([r[j] for r in rows])) for j in range(3))
    return {"input_wait_s": round(waited, 3), "superpixel_in_step_s": round(sp, 3),
            "iteration_wall_s": round(wall, 3),
            "host_wait_share": round((waited + sp) / wall, 3)}


def drift(precisions, batch, patch, iterations, jobs, vgg_model):
    """{precision: losses against fp32}: the same seed, weights and batches, `iterations`
    iterations; relative differences of g_loss_total and d_loss_total."""
    rng = np.random.default_rng(1)
    batches = [tuple(tf.constant(rng.uniform(-1, 1, [batch, patch, patch, 3]), tf.float32)
                     for _ in range(2)) for _ in range(iterations)]
    runs = {}
    for precision in ["fp32"] + [p for p in precisions if p != "fp32"]:
        trainer = make_trainer(batch, patch, jobs, vgg_model, precision)
        runs[precision] = [{k: float(v) for k, v in trainer.iteration(*b).items()}
                           for b in batches]
    report = {}
    for precision, run in runs.items():
        if precision == "fp32":
            continue
        entry = {}
        for name in ("g_loss_total", "d_loss_total"):
            rel = [abs(a[name] - b[name]) / abs(a[name]) for a, b in zip(runs["fp32"], run)]
            entry[name] = {"max_rel": round(max(rel), 4), "mean_rel": round(float(np.mean(rel)), 4),
                           "last_rel": round(rel[-1], 4),
                           "fp32_last": round(runs["fp32"][-1][name], 5),
                           "last": round(run[-1][name], 5)}
        entry["finite"] = all(np.isfinite(v) for it in run for v in it.values())
        report[precision] = entry
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="4x256,16x256",
                        help="comma-separated BATCHxPATCH (default 4x256,16x256)")
    parser.add_argument("--repeats", type=int, default=2, help="timed iterations per config")
    parser.add_argument("--superpixel-jobs", type=int, default=0,
                        help="superpixel workers (0: one per CPU)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="precisions to time, of those native here (default all)")
    parser.add_argument("--drift-batch", type=int, default=2)
    parser.add_argument("--drift-patch", type=int, default=64)
    parser.add_argument("--drift-iterations", type=int, default=100)
    parser.add_argument("--quick", action="store_true",
                        help="check that it runs: 2x64, one repeat, 3 drift iterations at 1x32")
    args = parser.parse_args()
    if args.quick:
        args.configs, args.repeats = "2x64", 1
        args.drift_batch, args.drift_patch, args.drift_iterations = 1, 32, 3
    vgg_model = vgg.VGG19Conv44(vgg.random_weights(0))       # real VGG19 shapes
    available, unavailable = [], {}
    for precision in args.precisions.split(","):
        ok, where = support(precision)
        if ok:
            available.append(precision)
        else:
            unavailable[precision] = where
    results = []
    with tempfile.TemporaryDirectory(prefix="train-step-bench-") as folder:
        for precision in available:
            for item in args.configs.split(","):
                batch, patch = (int(x) for x in item.lower().split("x"))
                results.append(bench(batch, patch, args.repeats, args.superpixel_jobs,
                                     vgg_model, precision, Path(folder)))
    drifts = drift(available, args.drift_batch, args.drift_patch, args.drift_iterations,
                   args.superpixel_jobs, vgg_model)
    superpixel.shutdown_pool()
    print(json.dumps({
        "benchmark": "train_step",
        "device": "CPU",
        "cpus": os.cpu_count(),
        "cpu": cpu_info(),
        "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
        "vgg": "stand-in, real VGG19 shapes (random weights)",
        "quick": args.quick,
        "precisions_unavailable": unavailable,
        "results": results,
        "drift": {"batch": args.drift_batch, "patch": args.drift_patch,
                  "iterations": args.drift_iterations, "seed": 0, "vs": "fp32",
                  "precisions": drifts},
    }, indent=2))


if __name__ == "__main__":
    main()
