"""Seconds per adversarial iteration, split into its parts, with a stand-in VGG of real shapes.

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/train_step.py [--configs 4x256,16x256] [--repeats 2]

For each batch x patch configuration (random photos/cartoons, random weights: speed does not
depend on the values), after one warm-up iteration that traces the tf.functions:
- g_forward: generator + guided filter (F_st) alone;
- superpixel: SLIC on that output through whitebox.superpixel (its worker pool), alone;
- g_update: the rest of the G step (losses incl. VGG, backward, Adam) = G step - the two above;
- d_update: the whole D step (its own generator pass with the updated weights, both
  discriminators forward/backward, Adam);
- iteration: G step + D step as the training loop runs them;
- reference_emulated_iteration: the same plus the two pieces of work the reference adds (one
  more generator + guided-filter pass to feed the superpixel step, and the three VGG passes its
  D-step run evaluates only for the summaries), timed in the same process.
Times are the minimum over the repeats (the least disturbed on a shared machine).
The reference (TF 2.15 compat + tf_slim, stand-in VGG) was measured on the project's 2-core CPU
at about 8.5 s per iteration at batch 4 and 35 s at batch 16; `speedup_vs_reference` divides by
those numbers, which is only meaningful on that machine.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from whitebox.quiet_tf import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from whitebox import superpixel, vgg  # noqa: E402
from whitebox.config import TrainConfig  # noqa: E402
from whitebox.cpuinfo import cpu_info  # noqa: E402
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


def bench(batch, patch, repeats, jobs, vgg_model):
    config = TrainConfig(vgg="stand-in", batch_size=batch, patch_size=patch,
                         superpixel_jobs=jobs)
    tf.keras.utils.set_random_seed(0)
    trainer = AdversarialStep(config, vgg_model)
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
        "batch": batch, "patch": patch, "repeats": repeats,
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
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="4x256,16x256",
                        help="comma-separated BATCHxPATCH (default 4x256,16x256)")
    parser.add_argument("--repeats", type=int, default=2, help="timed iterations per config")
    parser.add_argument("--superpixel-jobs", type=int, default=0,
                        help="superpixel workers (0: one per CPU)")
    args = parser.parse_args()
    vgg_model = vgg.VGG19Conv44(vgg.random_weights(0))       # real VGG19 shapes
    results = []
    for item in args.configs.split(","):
        batch, patch = (int(x) for x in item.lower().split("x"))
        results.append(bench(batch, patch, args.repeats, args.superpixel_jobs, vgg_model))
    superpixel.shutdown_pool()
    print(json.dumps({
        "benchmark": "train_step",
        "device": "CPU",
        "cpus": os.cpu_count(),
        "cpu": cpu_info(),
        "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
        "vgg": "stand-in, real VGG19 shapes (random weights)",
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
