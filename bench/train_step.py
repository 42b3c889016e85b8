"""Seconds per adversarial iteration, split into its parts, with a stand-in VGG of real shapes.

Prints one JSON object. Run from the repository root:
    .venv/bin/python bench/train_step.py [--configs 4x256,16x256] [--repeats 2]
        [--precisions fp32,bf16,fp16] [--vgg-precisions fp32,same] [--xla off,on] [--no-parts]
        [--drift-batch 2 --drift-patch 64 --drift-iterations 100] [--photos DIR]
    .venv/bin/python bench/train_step.py --quick      # checks that it runs: tiny settings
    .venv/bin/python bench/train_step.py --gpu        # the GPU bench (see gpu_bench)

matmul: the machine's float32 and bfloat16 rates on 4096x4096 matrices, and their ratio;
vs_fp32_today: every variant's iteration speed-up over today's fp32 (float32 VGG, XLA off),
next to that ratio and 60% of it (the bf16 goal).
For each precision that runs natively here (the others are listed with the reason), each VGG
precision (bf16/fp16 only) and XLA setting (a combination XLA refuses is listed under
"failed"), and each batch x patch configuration (random photos/cartoons, random weights:
speed does not depend on the values), after one warm-up iteration that traces the functions:
- g_forward: generator + guided filter (F_st) alone;
- superpixel: SLIC on that output through whitebox.model.superpixel (its worker pool), alone;
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
- interleaved (--interleaved): the XLA-off variants' iterations run round by round in turn on
  one batch, least time each and the speed-up over fp32: the ratio to trust on a busy machine.
- g_update_parts_s (XLA off): the G update split into VGG forward, VGG backward, generator
  backward, guided filters + colour shift, discriminators and the rest (g_update_parts).
Times are the minimum over the repeats (the least disturbed on a shared machine).
vgg_target_error: the relative error of the content and structure targets of VGG in bf16/fp16
against float32 VGG, on the real photos of --photos (default ../shared/images).
drift: losses of --drift-iterations iterations from the same seed, weights and batches in each
precision and VGG precision against fp32, at the drift's own (smaller) batch and patch.
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
from whitebox.base.quiet_tf import import_tensorflow  # noqa: E402

tf = import_tensorflow()
from whitebox.base.cpuinfo import cpu_info  # noqa: E402
from whitebox.base.errors import one_line  # noqa: E402
from whitebox.model import (
    losses,
    representations,
    superpixel,
    vgg,  # noqa: E402
)
from whitebox.model.guided_filter import guided_filter  # noqa: E402
from whitebox.model.network import run_in  # noqa: E402
from whitebox.model.precision import DTYPES, supports  # noqa: E402
from whitebox.train import data
from whitebox.train.config import PRECISIONS, TrainConfig  # noqa: E402
from whitebox.train.steps import AdversarialStep  # noqa: E402

REFERENCE_SECONDS = {4: 8.5, 16: 35.0}   # per iteration, 256x256, measured on the 2-core CPU


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    if isinstance(result, dict):
        [float(v) for v in result.values()]          # wait for the values
    elif hasattr(result, "numpy"):
        result = result.numpy()
    return time.perf_counter() - start, result


def make_trainer(batch, patch, jobs, vgg_model, variant, seed=0, strategy=None):
    """An AdversarialStep; variant: (precision, vgg_precision, xla)."""
    precision, vgg_precision, xla = variant
    config = TrainConfig(vgg="stand-in", batch_size=batch, patch_size=patch,
                         superpixel_jobs=jobs, precision=precision, seed=seed,
                         vgg_precision=vgg_precision, xla=xla)
    tf.keras.utils.set_random_seed(seed)
    return AdversarialStep(config, vgg_model, strategy)


def variant_name(variant):
    precision, vgg_precision, xla = variant
    return f"{precision}/vgg-{vgg_precision}/xla-{'on' if xla else 'off'}"


def _minimum(fn, args, repeats):
    """Least wall time of `repeats` calls of fn(*args), after one untimed call (tracing)."""
    _timed(fn, *args)
    return float(min(_timed(fn, *args)[0] for _ in range(repeats)))


def g_update_parts(trainer, photo, cartoon, repeats):
    """The G update split into its parts, each timed alone as a tf.function (XLA off) on the
    step's shapes and dtypes; seconds, minimum over `repeats`:
    vgg_forward: VGG on [photo; superpixel target] (no gradient) and on the output;
    vgg_backward: VGG forward+backward on the output to its input, less its forward;
    generator_backward: generator forward+backward to its weights, less its forward;
    filters_color_shift: F_st guided filter, surface filter and colour shift, forward+backward
    to the raw generator output, less the F_st filter's forward (already in g_forward);
    discriminators: both discriminators on the fake batch, forward+backward to their input.
    The caller takes `rest` = g_update - their sum (losses, Adam, graph overhead)."""
    gen, cfg = trainer.generator, trainer.config
    raw = tf.constant(np.asarray(run_in(trainer.dtype, gen, photo)))
    out = tf.constant(np.asarray(trainer.sample(photo)))
    target = tf.concat([photo, out], 0)      # stands for [photo; superpixel]: same shapes
    shift = representations.draw_color_shift_weights(trainer.rng)

    def upstream(t):
        return tf.reduce_sum(t * tf.cos(t))  # a non-trivial gradient

    def vgg(images):
        return trainer.vgg(images, trainer.vgg_dtype)

    def vgg_grad(o):
        with tf.GradientTape() as tape:
            tape.watch(o)
            loss = upstream(vgg(o))
        return tape.gradient(loss, o)

    def gen_grad(p):
        with tf.GradientTape() as tape:
            loss = upstream(run_in(trainer.dtype, gen, p))
        return tape.gradient(loss, gen.trainable_variables)

    def filters(r):
        with tf.GradientTape() as tape:
            tape.watch(r)
            o = guided_filter(photo, r, cfg.fst_radius, cfg.fst_eps)
            gray, _ = representations.texture(o, cartoon, weights=shift)
            loss = upstream(representations.surface(o)) + upstream(gray) + upstream(o)
        return tape.gradient(loss, r)

    def discs(o):
        with tf.GradientTape() as tape:
            tape.watch(o)
            gray, _ = representations.texture(o, cartoon, weights=shift)
            loss = (upstream(trainer.disc_blur(representations.surface(o)))
                    + upstream(trainer.disc_gray(gray)))
        return tape.gradient(loss, o)

    functions = (
        ("vgg_targets", vgg, (target,)), ("vgg_out", vgg, (out,)),
        ("vgg_out_grad", vgg_grad, (out,)),
        ("gen", lambda p: run_in(trainer.dtype, gen, p), (photo,)),
        ("gen_grad", gen_grad, (photo,)),
        ("fst", lambda r: guided_filter(photo, r, cfg.fst_radius, cfg.fst_eps), (raw,)),
        ("filters_grad", filters, (raw,)), ("discs_grad", discs, (out,)))
    t = {name: _minimum(tf.function(fn, autograph=False), args, repeats)
         for name, fn, args in functions}
    return {"vgg_forward": t["vgg_targets"] + t["vgg_out"],
            "vgg_backward": t["vgg_out_grad"] - t["vgg_out"],
            "generator_backward": t["gen_grad"] - t["gen"],
            "filters_color_shift": t["filters_grad"] - t["fst"],
            "discriminators": t["discs_grad"]}


def bench(batch, patch, repeats, jobs, vgg_model, variant, folder, parts=True):
    trainer = make_trainer(batch, patch, jobs, vgg_model, variant)
    rng = np.random.default_rng(0)
    photo = tf.constant(rng.uniform(-1, 1, [batch, patch, patch, 3]).astype(np.float32))
    cartoon = tf.constant(rng.uniform(-1, 1, [batch, patch, patch, 3]).astype(np.float32))

    # Warm-up: traces every function and starts the superpixel workers.
    _timed(trainer.sample, photo)
    trainer.iteration(photo, cartoon)

    # The work the reference does on top of ours: its D-step session run also evaluates every
    # summary, i.e. three VGG passes (photo, superpixel, output) that the D update ignores.
    summary_vgg = tf.function(lambda p, s, o: vgg_model(tf.concat([p, s, o], axis=0)))
    times = {k: [] for k in ("g_forward", "superpixel", "g_step", "d_update", "iteration",
                             "summary_vgg")}
    for k in range(repeats + 1):
        t, out = _timed(trainer.sample, photo)
        times["g_forward"].append(t)
        t, sp = _timed(lambda x: superpixel.superpixel_batch(x, "slic", jobs or None), out)
        times["superpixel"].append(t)
        t, _ = _timed(summary_vgg, photo, tf.constant(sp), tf.constant(out))
        times["summary_vgg"].append(t)
        if k == 0:
            for values in times.values():
                values.clear()          # the first round traced summary_vgg
            continue
        t_g, _ = _timed(trainer.g_step, photo, cartoon)
        t_d, _ = _timed(trainer.d_step, photo, cartoon)
        times["g_step"].append(t_g)
        times["d_update"].append(t_d)
        times["iteration"].append(t_g + t_d)
    # Minimum over repeats: the least disturbed by other processes on a shared machine.
    med = {k: float(np.min(v)) for k, v in times.items()}
    # The reference's iteration = its extra generator pass (feeding the superpixel step) + our
    # G step + our D step + the summary VGG passes; measured here, on the same machine and run.
    emulated = med["iteration"] + med["g_forward"] + med["summary_vgg"]
    g_update = med["g_step"] - med["g_forward"] - med["superpixel"]
    precision, vgg_precision, xla = variant
    result = {
        "variant": variant_name(variant), "precision": precision,
        "vgg_precision": vgg_precision, "xla": xla,
        "batch": batch, "patch": patch, "repeats": repeats,
        "g_forward_s": round(med["g_forward"], 3),
        "superpixel_s": round(med["superpixel"], 3),
        "g_update_s": round(g_update, 3),
        "d_update_s": round(med["d_update"], 3),
        "g_step_s": round(med["g_step"], 3),
        "iteration_s": round(med["iteration"], 3),
        "reference_emulated_iteration_s": round(emulated, 3),
        "speedup_vs_reference_emulated": round(emulated / med["iteration"], 2),
    }
    if patch == 256 and batch in REFERENCE_SECONDS:
        result["reference_iteration_s"] = REFERENCE_SECONDS[batch]
        result["speedup_vs_reference"] = round(REFERENCE_SECONDS[batch] / med["iteration"], 2)
    if parts and not xla:
        split = g_update_parts(trainer, photo, cartoon, repeats)
        split["rest"] = g_update - sum(split.values())
        result["g_update_parts_s"] = {k: round(v, 3) for k, v in split.items()}
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


def drift(variants, batch, patch, iterations, jobs, vgg_model):
    """{variant: losses against fp32}: the same seed, weights and batches, `iterations`
    iterations; relative differences of g_loss_total and d_loss_total (and of the two VGG
    terms) against fp32 with float32 VGG, XLA off."""
    rng = np.random.default_rng(1)
    batches = [tuple(tf.constant(rng.uniform(-1, 1, [batch, patch, patch, 3]), tf.float32)
                     for _ in range(2)) for _ in range(iterations)]
    base = ("fp32", "fp32", False)
    runs = {}
    for variant in [base] + [v for v in variants if v != base]:
        trainer = make_trainer(batch, patch, jobs, vgg_model, variant)
        runs[variant] = [{k: float(v) for k, v in trainer.iteration(*b).items()}
                         for b in batches]
    report = {}
    for variant, run in runs.items():
        if variant == base:
            continue
        entry = {}
        for name in ("g_loss_total", "d_loss_total", "photo_loss", "superpixel_loss"):
            rel = [abs(a[name] - b[name]) / abs(a[name]) for a, b in zip(runs[base], run)]
            entry[name] = {"max_rel": round(max(rel), 4), "mean_rel": round(float(np.mean(rel)), 4),
                           "last_rel": round(rel[-1], 4),
                           "fp32_last": round(runs[base][-1][name], 5),
                           "last": round(run[-1][name], 5)}
        entry["finite"] = all(np.isfinite(v) for it in run for v in it.values())
        report[variant_name(variant)] = entry
    return report


def load_photos(folder, size, limit):
    """Up to `limit` photos under `folder` (any depth), short side resized to `size` and
    centre-cropped to size x size; [N, size, size, 3] BGR float32 in [-1, 1]."""
    images = []
    for path in sorted(Path(folder).rglob("*")):
        image = cv2.imread(str(path)) if path.suffix.lower() in (".jpg", ".png") else None
        if image is None or len(images) >= limit:
            continue
        h, w = image.shape[:2]
        scale = size / min(h, w)
        image = cv2.resize(image, (max(size, round(w * scale)), max(size, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        images.append(image[top:top + size, left:left + size])
    return np.stack(images).astype(np.float32) / 127.5 - 1.0


def vgg_target_error(folder, vgg_model, precisions, size=256, limit=16, jobs=0):
    """How far VGG in a lower precision puts the content and structure targets and losses from
    float32 VGG, on real photos: for each precision, the relative L1 error of the conv4_4
    features of the photo (content target) and of its SLIC superpixel image (structure
    target, the photo standing in for a generator output after pre-training), and the relative
    error of the structure loss between the two (a realistic loss value)."""
    photos = load_photos(folder, size, limit)
    targets = superpixel.superpixel_batch(photos, "slic", jobs or None).astype(np.float32)
    features = {}
    for precision in ["fp32"] + list(precisions):
        dtype = DTYPES[precision]
        features[precision] = [np.concatenate([vgg_model(tf.constant(x[k:k + 2]), dtype).numpy()
                                               for k in range(0, len(x), 2)])
                               for x in (photos, targets)]
    ref_photo, ref_target = features["fp32"]
    ref_loss = float(losses.feature_l1(ref_photo, ref_target))
    report = {"photos": len(photos), "size": size, "folder": str(folder)}
    for precision in precisions:
        photo_f, target_f = features[precision]
        loss = float(losses.feature_l1(photo_f, target_f))
        report[precision] = {
            "content_target_rel_l1": _rel(photo_f, ref_photo),
            "structure_target_rel_l1": _rel(target_f, ref_target),
            "structure_loss_fp32": ref_loss, "structure_loss": loss,
            "structure_loss_rel": round(abs(loss - ref_loss) / ref_loss, 5)}
    return report


def _rel(a, b):
    """mean|a - b| / mean|b|, rounded."""
    return round(float(np.mean(np.abs(a - b)) / np.mean(np.abs(b))), 5)


def matmul_rates(n=4096, repeats=3):
    """GFLOP/s of an n x n float32 and bfloat16 matmul, interleaved, least time of `repeats`."""
    fn = tf.function(tf.matmul)
    inputs = {name: [tf.cast(tf.random.normal([n, n], seed=k), DTYPES[name]) for k in (1, 2)]
              for name in ("fp32", "bf16")}
    best = {name: float("inf") for name in inputs}
    for k in range(repeats + 1):
        for name, (a, b) in inputs.items():
            t, _ = _timed(fn, a, b)
            if k:
                best[name] = min(best[name], t)
    rates = {f"{name}_gflops": round(2 * n ** 3 / t / 1e9, 1) for name, t in best.items()}
    rates["bf16_over_fp32"] = round(best["fp32"] / best["bf16"], 2)
    rates["n"] = n
    return rates


def interleaved(batch, patch, repeats, jobs, vgg_model, variant_list):
    """{variant: least seconds per iteration} with the variants' iterations interleaved
    round by round on the same batch, so that a change in the machine's load hits them all
    alike; and each one's speed-up over the first (today's fp32)."""
    rng = np.random.default_rng(0)
    photo, cartoon = (tf.constant(rng.uniform(-1, 1, [batch, patch, patch, 3]), tf.float32)
                      for _ in range(2))
    trainers = {variant_name(v): make_trainer(batch, patch, jobs, vgg_model, v)
                for v in variant_list}
    times = {name: [] for name in trainers}
    for k in range(repeats + 1):                # round 0 traces
        for name, trainer in trainers.items():
            t, _ = _timed(trainer.iteration, photo, cartoon)
            if k:
                times[name].append(t)
    best = {name: min(t) for name, t in times.items()}
    first = best[variant_name(variant_list[0])]
    return {"batch": batch, "patch": patch, "repeats": repeats,
            "iteration_s": {name: round(t, 3) for name, t in best.items()},
            "vs_first": {name: round(first / t, 2) for name, t in best.items()}}


def ratios(results, matmul):
    """Per batch x patch: each variant's speed-up over today's fp32 iteration (fp32, float32
    VGG, XLA off), next to the bf16/fp32 matmul ratio and 60% of it (the goal for bf16)."""
    table = {}
    for r in results:
        key = f"{r['batch']}x{r['patch']}"
        table.setdefault(key, {})[r["variant"]] = r["iteration_s"]
    out = {}
    for key, times in table.items():
        base = times.get(variant_name(("fp32", "fp32", False)))
        if base:
            out[key] = {"vs_fp32_today": {v: round(base / t, 2) for v, t in times.items()},
                        "matmul_bf16_over_fp32": matmul["bf16_over_fp32"],
                        "bf16_goal": round(0.6 * matmul["bf16_over_fp32"], 2)}
    return out


def gpu_bench(args, vgg_model, folder):
    """Every strategy x precision x XLA at args.configs (16x256 by default) on the GPU: seconds
    per iteration fed by the input pipeline, the host-wait share and the superpixel share.
    Stops starting new combinations after args.budget_s seconds (those are listed as skipped)."""
    start = time.perf_counter()
    batch, patch = (int(x) for x in args.configs.split(",")[0].lower().split("x"))
    rows, skipped = [], []
    for strategy_name in ("one", "mirrored"):
        for precision in args.available:
            for xla in (False, True):
                combo = {"strategy": strategy_name, "precision": precision, "xla": xla}
                if time.perf_counter() - start > args.budget_s:
                    skipped.append(combo)
                    continue
                t0 = time.perf_counter()
                try:
                    combo.update(_gpu_combo(args, vgg_model, folder, batch, patch, **combo))
                except tf.errors.OpError as err:      # e.g. XLA refusing a combination
                    combo["error"] = one_line(err)[:300]
                combo["setup_and_run_s"] = round(time.perf_counter() - t0, 1)
                rows.append(combo)
    return {"batch": batch, "patch": patch, "repeats": args.repeats, "results": rows,
            "skipped_for_budget": skipped, "total_s": round(time.perf_counter() - start, 1)}


def _gpu_combo(args, vgg_model, folder, batch, patch, strategy, precision, xla):
    """One row of the GPU bench: data_path's timings, the replicas, seconds per iteration and
    the superpixel share of it."""
    from whitebox.train import distribute
    strategy = distribute.make_strategy(strategy)
    trainer = make_trainer(batch, patch, args.superpixel_jobs, vgg_model,
                           (precision, "auto", xla), strategy=strategy)
    timing = data_path(trainer, batch, patch, args.repeats, folder)
    return dict(timing, replicas=strategy.num_replicas_in_sync,
                seconds_per_iteration=timing["iteration_wall_s"],
                superpixel_share=round(timing["superpixel_in_step_s"]
                                       / timing["iteration_wall_s"], 3))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=None,
                        help="comma-separated BATCHxPATCH (default 4x256,16x256; --gpu 16x256)")
    parser.add_argument("--repeats", type=int, default=2, help="timed iterations per config")
    parser.add_argument("--superpixel-jobs", type=int, default=0,
                        help="superpixel workers (0: one per CPU)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="precisions to time, of those native here (default all)")
    parser.add_argument("--vgg-precisions", default="fp32,same",
                        help="VGG precisions timed for bf16/fp16 (fp32 always uses fp32)")
    parser.add_argument("--xla", default="off,on", help="XLA settings to time: off,on")
    parser.add_argument("--no-parts", action="store_true", help="skip the G update split")
    parser.add_argument("--interleaved", action="store_true",
                        help="also time the XLA-off variants with their iterations interleaved")
    parser.add_argument("--drift-batch", type=int, default=2)
    parser.add_argument("--drift-patch", type=int, default=64)
    parser.add_argument("--drift-iterations", type=int, default=100, help="0 skips the drift")
    parser.add_argument("--photos", default=str(REPO.parent / "shared" / "images"),
                        help="real photos for the VGG target error (none: skipped)")
    parser.add_argument("--gpu", action="store_true",
                        help="GPU bench: every strategy x precision x XLA at 16x256, "
                             "host-wait and superpixel shares; refuses to run without a GPU "
                             "unless --quick")
    parser.add_argument("--budget-s", type=float, default=330,
                        help="--gpu: start no new combination after this many seconds")
    parser.add_argument("--quick", action="store_true",
                        help="check that it runs: 2x64, one repeat, 3 drift iterations at 1x32, "
                             "2 photos at 64")
    args = parser.parse_args()
    args.configs = args.configs or ("16x256" if args.gpu else "4x256,16x256")
    if args.quick:
        args.configs, args.repeats = "2x64", 1
        args.drift_batch, args.drift_patch, args.drift_iterations = 1, 32, 3
    return args


def variants(args):
    """(precision, vgg_precision, xla) of every timed combination."""
    xla = [{"off": False, "on": True}[x] for x in args.xla.split(",")]
    return [(p, v, x) for p in args.available
            for v in (["fp32"] if p == "fp32" else args.vgg_precisions.split(","))
            for x in xla]


def main():
    args = parse_args()
    available, unavailable = [], {}
    for precision in args.precisions.split(","):
        ok, where = supports("tf", precision)
        if ok:
            available.append(precision)
        else:
            unavailable[precision] = where
    args.available = available
    gpus = len(tf.config.list_physical_devices("GPU"))
    if args.gpu and not gpus and not args.quick:
        print("train_step.py: error: --gpu needs a GPU that TensorFlow can see (none here); "
              "--gpu --quick checks the bench on the CPU", file=sys.stderr)
        sys.exit(2)
    vgg_model = vgg.VGG19Conv44(vgg.random_weights(0))       # real VGG19 shapes
    report = {
        "benchmark": "train_step_gpu" if args.gpu else "train_step",
        "device": f"{gpus} GPU" if gpus else "CPU",
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "cpus": os.cpu_count(), "cpu": cpu_info(),
        "machine": platform.processor() or platform.machine(),
        "tensorflow": tf.__version__,
        "vgg": "stand-in, real VGG19 shapes (random weights)",
        "quick": args.quick, "command": " ".join(sys.argv[1:]),
        "precisions_unavailable": unavailable,
    }
    with tempfile.TemporaryDirectory(prefix="train-step-bench-") as folder:
        if args.gpu:
            report["gpu_bench"] = gpu_bench(args, vgg_model, Path(folder))
        else:
            report["matmul"] = matmul_rates(1024 if args.quick else 4096)
            results = []
            for item in args.configs.split(","):
                batch, patch = (int(x) for x in item.lower().split("x"))
                for variant in variants(args):
                    try:
                        results.append(bench(batch, patch, args.repeats, args.superpixel_jobs,
                                             vgg_model, variant, Path(folder),
                                             not args.no_parts))
                    except tf.errors.OpError as err:      # e.g. XLA refusing a combination
                        report.setdefault("failed", []).append(
                            {"variant": variant_name(variant), "batch": batch, "patch": patch,
                             "error": one_line(err)[:300]})
            report["results"] = results
            report["vs_fp32_today"] = ratios(results, report["matmul"])
            if args.interleaved:
                plain = [v for v in variants(args) if not v[2]]     # fp32 first
                report["interleaved"] = [
                    interleaved(*(int(x) for x in item.lower().split("x")), args.repeats,
                                args.superpixel_jobs, vgg_model, plain)
                    for item in args.configs.split(",")]
    if not args.gpu:
        low = [p for p in available if p != "fp32"]
        if args.photos and Path(args.photos).is_dir() and low:
            report["vgg_target_error"] = vgg_target_error(
                args.photos, vgg_model, low, 64 if args.quick else 256, 2 if args.quick else 16,
                args.superpixel_jobs)
        if args.drift_iterations > 0:
            report["drift"] = {"batch": args.drift_batch, "patch": args.drift_patch,
                               "iterations": args.drift_iterations, "seed": 0,
                               "vs": variant_name(("fp32", "fp32", False)),
                               "variants": drift([v for v in variants(args) if not v[2]],
                                                 args.drift_batch, args.drift_patch,
                                                 args.drift_iterations, args.superpixel_jobs,
                                                 vgg_model)}
    superpixel.shutdown_pool()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
