"""Does training learn? An offline convergence experiment with the F_st ablation, at small scale.

Prints one JSON object (also written to OUT/learn.json) and draws OUT/learn.png. Run from the
repository root:
    .venv/bin/python bench/learn.py --out runs/learn            # 1,000 + 2 x 600 iterations
    .venv/bin/python bench/learn.py --quick --out runs/learn-q  # checks that it all runs
    .venv/bin/python bench/learn.py --scale paper --out ...     # for a GPU: patch 256, batch 16
    .venv/bin/python bench/learn.py --report-only --out runs/learn  # score and draw again
Measured times and results: docs/TRAINING.md. `--side-by-side` runs the two adversarial runs
at once (the quick scale always does).

Nothing is downloaded. The steps, each through the project's own tools:
1. data: the reference's test photos in ../shared/images, scikit-image's and scikit-learn's
   sample photos, split by source photo into three disjoint sets: P (photo domain), C (cartoon
   source) and V (validation). Random square crops at several scales, with horizontal flips,
   are written as PNG files under OUT/data, so a few dozen photos give thousands of patches.
2. the cartoon domain is the authors' official generator (../shared/weights/whitebox_official)
   applied to the crops of C by cartoonize.py's cartoonizer and loop (--precision fp32
   --runtime tf); the same is done to V, so the ideal output of every validation crop is
   known. Lists: train.py make-lists' function (whitebox.train.data.make_lists).
3. a stand-in VGG19: random He-normal weights with the real VGG19 shapes (whitebox.model.vgg
   .random_weights), so the content and structure losses compare random features, not
   ImageNet's.
4. train.py pretrain, then train.py train --init-from twice from that same generator: the
   reference's default (F_st in the losses) and --no-fst-in-losses. The reference's algorithm
   and defaults except patch, batch and iteration counts; --precision bf16 (the CPU's native
   bfloat16 where it has AVX512-BF16 or AMX, else fp32 with a notice in the run's log).
5. every K iterations the checkpoints the runs wrote are scored on V against the official
   cartoons: PSNR and SSIM (scikit-image) and KID on the stand-in Inception graph of the tests
   (tests/inception_standin.py; a random network, so this KID is not the paper's FID), and
   PSNR to the photo itself (how far the output moved from its input). The baselines are the
   photo itself (identity) and the generator right after pre-training.
6. long-run health: every logged loss is finite; the pretrain run keeps exactly --keep
   checkpoints, the newest; the F_st run is killed once with SIGKILL at a random moment and
   resumed with --resume, and the iterations it ran twice (from its last checkpoint to the
   kill) must give the same losses in both processes, within a tolerance scaled to each loss.
"""
import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OFFICIAL = SHARED / "weights" / "whitebox_official"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))
from whitebox.base.cpuinfo import cpu_info  # noqa: E402

# Per scale: training patch and batch, iterations of pretrain and of each adversarial run,
# evaluation (= checkpoint) interval, crops per source photo for P and C and for V, the size of
# the V crops, and the checkpoints the pretrain run keeps.
SCALES = {
    "quick": dict(patch=32, batch=2, pretrain_iterations=8, iterations=18, every=6,
                  train_crops=6, val_crops=2, val_size=32, pretrain_keep=2),
    "cpu": dict(patch=96, batch=4, pretrain_iterations=1000, iterations=600, every=50,
                train_crops=150, val_crops=8, val_size=128, pretrain_keep=2),
    # The paper's patch and batch, its 50,000 + 100,000 iterations divided by 100.
    "paper": dict(patch=256, batch=16, pretrain_iterations=500, iterations=1000, every=100,
                  train_crops=150, val_crops=8, val_size=256, pretrain_keep=2),
}
# Smallest crop side, as a share of the source photo's short side (the largest is all of it).
MIN_CROP_SHARE = 0.25
# Shares of the source photos that go to V and to C; the rest is P.
SPLIT = {"val": 0.25, "cartoon": 0.35}
RUNS = {"fst": [], "no_fst": ["--no-fst-in-losses"]}
# learn.png's resolution (with 256 colours the figure stays well under 300 KB, for docs/).
DPI = 80
# What the data and training steps record for the report (read back by --report-only).
STAGES = "stages.json"
LOSS_LINE = re.compile(r"^iter (\d+): (.*)$")
# Resume check: |a - b| <= RTOL * max(|a|, |b|) + FLOOR * (median |loss| over the run).
RESUME_RTOL, RESUME_FLOOR = 1e-3, 1e-3


def source_photos():
    """Colour photos available offline: the reference's test photos in ../shared/images
    (its extra/ folder holds photo/cartoon comparison grids and a drawing: left out) and the
    sample photos that scikit-image and scikit-learn ship (charts, drawings, microscopy and
    space pictures left out). Returns {name: path}, sorted by name."""
    import skimage

    found = {}
    for path in sorted((SHARED / "images" / "reference_test_images").glob("*.jpg")):
        found[f"shared_{path.stem}"] = path
    skdata = Path(skimage.__file__).parent / "data"
    for stem in ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png",
                 "rocket.jpg"):
        if (skdata / stem).is_file():
            found[f"skimage_{Path(stem).stem}"] = skdata / stem
    try:
        import sklearn
        sklearn_images = Path(sklearn.__file__).parent / "datasets" / "images"
        for path in sorted(sklearn_images.glob("*.jpg")):
            found[f"sklearn_{path.stem}"] = path
    except ImportError:
        pass
    return dict(sorted(found.items()))


def split_sources(names, seed):
    """{"val": [...], "cartoon": [...], "photo": [...]}: disjoint sets of source names."""
    order = list(np.random.default_rng(seed).permutation(sorted(names)))
    n_val = max(1, round(len(order) * SPLIT["val"]))
    n_cartoon = max(1, round(len(order) * SPLIT["cartoon"]))
    return {"val": sorted(order[:n_val]), "cartoon": sorted(order[n_val:n_val + n_cartoon]),
            "photo": sorted(order[n_val + n_cartoon:])}


def random_crops(image, count, size, rng):
    """`count` square crops of the HxWx3 BGR `image`, each of a random side between
    MIN_CROP_SHARE and all of the short side, at a random place, resized to size x size
    (INTER_AREA) and flipped left-right with probability 1/2."""
    h, w = image.shape[:2]
    short = min(h, w)
    crops = []
    for _ in range(count):
        side = int(rng.integers(max(size, int(short * MIN_CROP_SHARE)), short + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = cv2.resize(image[top:top + side, left:left + side], (size, size),
                          interpolation=cv2.INTER_AREA)
        crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
    return crops


def write_crops(sources, folder, count, size, rng):
    """Crops of each source photo as folder/<source>_<k>.png; returns the number written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, path in sources.items():
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or min(image.shape[:2]) < size:
            continue
        for k, crop in enumerate(random_crops(image, count, size, rng)):
            cv2.imwrite(str(folder / f"{name}_{k:04d}.png"), np.ascontiguousarray(crop))
            written += 1
    return written


def launch(args, log_path, note="", own_group=False):
    """Start a project command line (a list after the python executable), its output appended
    to log_path; returns the Popen. `own_group`: in a new process group (which Ctrl-C on the
    bench does not reach), so that the whole group can be killed."""
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(map(str, args))}{note}\n")
        log.flush()
        return subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=own_group)


def finish(proc, args, log_path):
    """Wait for `proc` (from launch); raises RuntimeError naming the command when it failed."""
    if proc.wait() != 0:
        raise RuntimeError(f"{args[0]} {args[1]} exited with {proc.returncode}; see {log_path}")


def command(args, log_path):
    """Run a project command line to completion (launch, then finish)."""
    finish(launch(args, log_path), args, log_path)


def official_cartoonizer():
    """(network.Generator holding the authors' weights, the cartoonizer that cartoonize.py
    --precision fp32 --runtime tf builds around it). Loading another checkpoint into the
    generator (checkpoints.load_generator) changes what the cartoonizer computes."""
    from whitebox.infer.options import InferenceOptions
    from whitebox.infer.runtimes import load_generator, make_cartoonizer

    generator, prefix = load_generator(OFFICIAL, offline=True, progress=False)
    return generator, make_cartoonizer(generator, prefix, InferenceOptions(runtime="tf"))


def make_data(out, scale, seed, cartoonizer):
    """Steps 1-2: crops of P, C and V, the official cartoons of C and V (cartoonize.py's loop,
    whitebox.infer.batch, with `cartoonizer`), and the data lists (train.py make-lists' function)."""
    from whitebox.infer.batch import plan_jobs, run_plan
    from whitebox.train.data import make_lists

    sources = source_photos()
    split = split_sources(sources, seed)
    rng = np.random.default_rng(seed)
    data = out / "data"
    counts = {}
    for part, folder, count, size in (
            ("photo", "photo_scenery", scale["train_crops"], scale["patch"]),
            ("cartoon", "cartoon_source", scale["train_crops"], scale["patch"]),
            ("val", "val_photo", scale["val_crops"], scale["val_size"])):
        chosen = {name: sources[name] for name in split[part]}
        counts[folder] = write_crops(chosen, data / folder, count, size, rng)
    for source, target in (("cartoon_source", "cartoon_scenery"), ("val_photo", "val_official")):
        done = run_plan(plan_jobs([data / source], data / target), cartoonizer.cartoonize,
                        progress=False)
        if done["failed"]:
            raise RuntimeError(f"{data / source}: {done['failed']} crops failed to cartoonize")
    make_lists({"photo_scenery": data / "photo_scenery",
                "cartoon_scenery": data / "cartoon_scenery"}, out / "lists")
    return dict(sources={k: str(v) for k, v in sources.items()}, split=split, crops=counts)


def read_losses(log_path):
    """[(iteration, {loss: value})] of every loss line of a run's log.txt, in file order (an
    iteration run twice, before a kill and after the resume, appears twice)."""
    rows = []
    for line in Path(log_path).read_text().splitlines():
        match = LOSS_LINE.match(line)
        if match and "checkpoint" not in match.group(2):
            values = dict(item.rsplit(" ", 1) for item in match.group(2).split(", "))
            rows.append((int(match.group(1)), {k: float(v) for k, v in values.items()}))
    return rows


def last_logged_iteration(log_path):
    """The iteration of the last "iter N: ..." line of a run's log.txt (-1 before the first)."""
    try:
        lines = Path(log_path).read_text().splitlines()
    except OSError:
        return -1
    for line in reversed(lines):
        match = LOSS_LINE.match(line)
        if match:
            return int(match.group(1))
    return -1


def train_until_killed(args, run_dir, kill_at, rng, log_path):
    """Start train.py with `args`, SIGKILL it (its whole process group: the superpixel workers
    too) a random fraction of a second after it has logged iteration `kill_at`, and return the
    last iteration it logged."""
    proc = launch(args, log_path, f"   (killed after iteration {kill_at})", own_group=True)
    try:
        while last_logged_iteration(run_dir / "log.txt") < kill_at:
            if proc.poll() is not None:
                raise RuntimeError(f"train.py ended (exit {proc.returncode}) before "
                                   f"iteration {kill_at}; see {log_path}")
            time.sleep(0.1)
        time.sleep(float(rng.uniform(0, 0.2)))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return last_logged_iteration(run_dir / "log.txt")


def pretrain_args(out, scale, seed):
    """train.py pretrain's command line: 4 checkpoints written, --keep of them kept."""
    return ["train.py", "pretrain", "--data-lists", out / "lists", "--out", out / "pretrain",
            "--batch-size", scale["batch"], "--patch-size", scale["patch"],
            "--iterations", scale["pretrain_iterations"], "--save-every", pretrain_every(scale),
            "--keep", scale["pretrain_keep"], "--sample-every", scale["pretrain_iterations"],
            "--print-every", 1, "--seed", seed, "--precision", "bf16", "--no-progress"]


def train_args(out, name, scale, seed, extra):
    """train.py train's command line for the run `name` with the `extra` flags."""
    return ["train.py", "train", "--data-lists", out / "lists", "--out", out / name,
            "--init-from", out / "pretrain" / "checkpoints", "--vgg", out / "vgg_standin.npz",
            "--batch-size", scale["batch"], "--patch-size", scale["patch"],
            "--iterations", scale["iterations"], "--save-every", scale["every"],
            "--keep", train_keep(scale),
            "--sample-every", scale["iterations"], "--print-every", 1, "--seed", seed,
            "--precision", "bf16", "--no-progress", *extra]


def train_runs(out, scale, seed, log_path, side_by_side):
    """Step 4: pretrain, the two adversarial runs (the F_st one killed once and resumed), one
    after the other or, with `side_by_side`, at once. Returns {phase: wall seconds} (side by
    side, both count from the same start) and the kill record."""
    from whitebox.model import vgg

    vgg.save_npz(vgg.random_weights(seed), out / "vgg_standin.npz")
    start = time.perf_counter()
    command(pretrain_args(out, scale, seed), log_path)
    walls = dict(pretrain=time.perf_counter() - start)
    rng = np.random.default_rng(seed + 1)
    every, total = scale["every"], scale["iterations"]
    # A random iteration past the first checkpoint, not on a checkpoint boundary, so that some
    # iterations run twice; the kill itself comes a random fraction of a second later.
    kill_at = (int(rng.integers(1, total // every - 1)) * every
               + int(rng.integers(every // 2, every - 1)))
    start = time.perf_counter()
    other = train_args(out, "no_fst", scale, seed, RUNS["no_fst"])
    beside = launch(other, log_path) if side_by_side else None
    try:
        kill = dict(run="fst", after_iteration=kill_at, last_logged=train_until_killed(
            train_args(out, "fst", scale, seed, RUNS["fst"]), out / "fst", kill_at, rng,
            log_path))
        command(["train.py", "train", "--out", out / "fst", "--resume", "--no-progress"],
                log_path)
    except BaseException:
        if beside is not None and beside.poll() is None:
            beside.kill()
            beside.wait()
        raise
    walls["fst"] = time.perf_counter() - start
    if beside is None:
        start = time.perf_counter()
        command(other, log_path)
    else:
        finish(beside, other, log_path)
    walls["no_fst"] = time.perf_counter() - start
    return walls, kill


def resume_check(log_path, kill):
    """Compare the losses of the iterations that the killed process and the resumed one both
    ran. Returns a dict: iterations compared, worst difference over tolerance, whether it held."""
    rows = read_losses(log_path)
    seen, pairs = {}, []
    for i, values in rows:
        if i in seen:
            pairs.append((i, seen[i], values))
        seen[i] = values
    scales = {k: float(np.median([abs(v[k]) for _, v in rows])) for k in rows[0][1]}
    worst, worst_at = 0.0, None
    for i, a, b in pairs:
        for k in a:
            tol = RESUME_RTOL * max(abs(a[k]), abs(b[k])) + RESUME_FLOOR * scales[k]
            ratio = abs(a[k] - b[k]) / tol if tol > 0 else float(a[k] != b[k])
            if ratio > worst:
                worst, worst_at = ratio, f"iteration {i} {k}: {a[k]} vs {b[k]}"
    resumed_from = min((i for i, _, _ in pairs), default=None)
    return dict(kill, resumed_at_iteration=resumed_from, iterations_compared=len(pairs),
                worst_diff_over_tolerance=worst, worst=worst_at,
                tolerance=f"{RESUME_RTOL} x |loss| + {RESUME_FLOOR} x median |loss| of the run",
                held=bool(pairs) and worst <= 1.0)


def pretrain_every(scale):
    return max(1, scale["pretrain_iterations"] // 4)


def train_keep(scale):
    """--keep of the adversarial runs: every checkpoint stays, for the evaluation."""
    return scale["iterations"] // scale["every"] + 1


def saved_at(iterations, every):
    """The checkpoint numbers a run of `iterations` saving every `every` writes."""
    return sorted(set(range(every, iterations + 1, every)) | {iterations})


def checkpoint_numbers(run_dir):
    """Numbers of the checkpoints in run_dir/checkpoints, ascending."""
    return sorted(int(p.name[len("ckpt-"):-len(".index")])
                  for p in (run_dir / "checkpoints").glob("ckpt-*.index"))


def health(out, scale, runs_rows):
    """No NaN in any logged loss; checkpoints kept as --keep says."""
    nonfinite = {name: sum(not np.isfinite(v) for _, row in rows for v in row.values())
                 for name, rows in runs_rows.items()}
    kept = {}
    pre_saves = saved_at(scale["pretrain_iterations"], pretrain_every(scale))
    for name, keep, saves in (
            ("pretrain", scale["pretrain_keep"], pre_saves),
            *((run, train_keep(scale), saved_at(scale["iterations"], scale["every"]))
              for run in RUNS)):
        found = checkpoint_numbers(out / name)
        kept[name] = dict(keep=keep, found=found, held=found == saves[-keep:])
    return dict(nonfinite_losses=nonfinite, checkpoints=kept,
                held=not any(nonfinite.values()) and all(k["held"] for k in kept.values()))


class Scorer:
    """Scores a generator checkpoint on V against the official cartoons of V: PSNR, SSIM
    (scikit-image, on the uint8 BGR cartoons) and KID on the stand-in Inception graph."""

    def __init__(self, out, standin_dir, generator, cartoonizer):
        from tests.inception_standin import write_standin
        from whitebox.base.image_io import list_images
        from whitebox.evaluate.metrics import load_extractor

        data = out / "data"
        self.names = [p.name for p in list_images(data / "val_photo")]
        self.photos = [cv2.imread(str(data / "val_photo" / n)) for n in self.names]
        self.official = [cv2.imread(str(data / "val_official" / n)) for n in self.names]
        pb, _ = write_standin(standin_dir)
        self.net = load_extractor(pb)
        self.official_features = self._embed(self.official)
        self.generator, self.cartoonizer = generator, cartoonizer

    def _embed(self, bgr_images):
        return self.net.embed([image[:, :, ::-1] for image in bgr_images])

    def score(self, images):
        """Means over V of PSNR (dB) and SSIM to the official cartoons, KID to them, and PSNR
        to the photos themselves (how far the output moved from its input)."""
        from skimage.metrics import peak_signal_noise_ratio, structural_similarity

        from whitebox.evaluate.metrics import kernel_inception_distance

        def mean_psnr(targets):
            return float(np.mean([peak_signal_noise_ratio(t, i, data_range=255)
                                  for t, i in zip(targets, images)]))

        ssim = [structural_similarity(o, i, channel_axis=2, data_range=255)
                for o, i in zip(self.official, images)]
        kid = kernel_inception_distance(self._embed(images), self.official_features)
        return dict(psnr=mean_psnr(self.official), ssim=float(np.mean(ssim)), kid=kid["mean"],
                    psnr_to_photo=mean_psnr(self.photos))

    def cartoons(self, prefix):
        """The V cartoons of the checkpoint `prefix` as cartoonize.py makes them (fp32, tf)."""
        from whitebox.model.checkpoints import load_generator

        load_generator(self.generator, prefix)
        return [self.cartoonizer.cartoonize(photo) for photo in self.photos]


def evaluate(out, scale, strip_count, generator, cartoonizer):
    """Step 5: the baselines and the curve of each run (every checkpoint present), and for the
    figure the V images {column: [BGR image per V crop]} of the photos, the official cartoons,
    the pretrained generator and `strip_count` evenly spaced checkpoints of each run, with the
    indices of the first crop of each V source photo. Returns (baselines, curves, strips,
    rows, number of V crops)."""
    scorer = Scorer(out, out / "inception_standin", generator, cartoonizer)
    pre_prefix = str(out / "pretrain" / "checkpoints"
                     / f"ckpt-{checkpoint_numbers(out / 'pretrain')[-1]}")
    pre_images = scorer.cartoons(pre_prefix)
    identity = scorer.score(scorer.photos)
    del identity["psnr_to_photo"]  # infinite: the photo is its own output
    baselines = dict(identity=identity, pretrained=scorer.score(pre_images))
    strips = {"photo": scorer.photos, "official": scorer.official, "pretrained": pre_images}
    curves = {}
    every, total = scale["every"], scale["iterations"]
    shown = set(np.linspace(0, total, strip_count + 1).round().astype(int)[1:] // every * every)
    for name in RUNS:
        curve = [dict(iteration=0, **baselines["pretrained"])]
        for it in checkpoint_numbers(out / name):
            prefix = out / name / "checkpoints" / f"ckpt-{it}"
            images = scorer.cartoons(str(prefix))
            curve.append(dict(iteration=it, **scorer.score(images)))
            if it in shown:
                strips[f"{name}@{it}"] = images
        curves[name] = curve
    sources = [name.rsplit("_", 1)[0] for name in scorer.names]
    rows = [k for k, source in enumerate(sources) if source not in sources[:k]]
    return baselines, curves, strips, rows, len(scorer.names)


def loss_summary(rows, every):
    """Mean of each loss over each block of `every` iterations (the last value logged for an
    iteration counts), for the JSON."""
    last = {}
    for i, values in rows:
        last[i] = values
    blocks = {}
    for i in sorted(last):
        blocks.setdefault(i // every, []).append(last[i])
    return [dict(iterations=[b * every, b * every + len(v) - 1],
                 **{k: float(np.mean([x[k] for x in v])) for k in v[0]})
            for b, v in sorted(blocks.items())]


PANELS = (("psnr", "PSNR to official (dB), higher is better"),
          ("ssim", "SSIM to official, higher is better"),
          ("kid", "KID to official (stand-in Inception)"),
          ("psnr_to_photo", "PSNR to the photo (dB)"))
RUN_LABELS = {"fst": "F_st in losses (reference)", "no_fst": "--no-fst-in-losses"}


def mosaic(strips, rows, gap=4):
    """One RGB uint8 image: a row per V crop index in `rows`, a column per entry of `strips`
    ({column: [BGR image per V crop]}, all of one size), with white gaps."""
    tiles = [[strips[column][index][:, :, ::-1] for column in strips] for index in rows]
    h, w = tiles[0][0].shape[:2]
    image = np.full((len(rows) * (h + gap) - gap, len(strips) * (w + gap) - gap, 3), 255,
                    np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            image[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tile
    return image


def draw(path, report, strips, rows):
    """learn.png: PSNR, SSIM and KID to the official cartoons and PSNR to the photo against
    iterations for both runs with the baselines, and a strip of the V crops `rows` (indices):
    photo, official cartoon, pretrained, checkpoints of each run. matplotlib keeps its font
    cache beside the figure, not in the user's home."""
    os.environ.setdefault("MPLCONFIGDIR", str(Path(path).parent / ".matplotlib"))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strip = mosaic(strips, rows)
    width = 13.0
    fig = plt.figure(figsize=(width, 3.4 + width * strip.shape[0] / strip.shape[1]))
    grid = fig.add_gridspec(2, len(PANELS), height_ratios=[3.0, width * strip.shape[0]
                                                           / strip.shape[1]])
    for m, (metric, title) in enumerate(PANELS):
        ax = fig.add_subplot(grid[0, m])
        for name, curve in report["curves"].items():
            ax.plot([c["iteration"] for c in curve], [c[metric] for c in curve], "o-", ms=3,
                    label=RUN_LABELS[name])
        for base, style in (("identity", ":"), ("pretrained", "--")):
            if metric in report["baselines"][base]:
                ax.axhline(report["baselines"][base][metric], color="gray", ls=style,
                           label=base)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("adversarial iteration", fontsize=8)
        ax.tick_params(labelsize=7)
        if m == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, :])
    ax.imshow(strip)
    tile = strip.shape[1] / len(strips)
    ax.set_xticks([tile * (c + 0.5) for c in range(len(strips))])
    ax.set_xticklabels([c.replace("no_fst", "no F_st").replace("fst", "F_st") for c in strips],
                       fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    fig.suptitle(report["title"], fontsize=9)
    fig.tight_layout()
    save_small_png(fig, path)
    plt.close(fig)


def save_small_png(fig, path):
    """The matplotlib figure as a 256-colour PNG (a third of the size of a full-colour one),
    written atomically."""
    from PIL import Image

    from whitebox.base.image_io import write_bytes_atomic

    full, small = io.BytesIO(), io.BytesIO()
    fig.savefig(full, format="png", dpi=DPI)
    Image.open(full).convert("RGB").quantize(256).save(small, format="png", optimize=True)
    write_bytes_atomic(path, small.getvalue())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path,
                        help="a new or empty folder for the data, runs, learn.json, learn.png")
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu",
                        help="cpu (default: about 30-40 min on 2 cores), paper (a GPU: patch "
                             "256, batch 16) or quick")
    parser.add_argument("--quick", dest="scale", action="store_const", const="quick",
                        help="same as --scale quick: a check that everything runs (< 2 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side-by-side", action="store_true",
                        help="run the two adversarial runs at once (always with --quick, whose "
                             "time is mostly start-up): for a busy or many-core machine")
    parser.add_argument("--strip", type=int, default=4, help="checkpoints shown per run")
    parser.add_argument("--report-only", action="store_true",
                        help="score the runs that an earlier learn.py left in --out again and "
                             "rewrite learn.json and learn.png (no data, no training)")
    args = parser.parse_args(argv)
    if args.report_only:
        if not (args.out / STAGES).is_file():
            parser.error(f"{args.out}: holds no finished training ({STAGES} is missing)")
    elif args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"{args.out}: exists and is not an empty folder")
    if not (OFFICIAL / "checkpoint").is_file():
        parser.error(f"{OFFICIAL}: the authors' checkpoint is needed for the cartoon domain")
    return args


def train_stages(out, scale, seed, cartoonizer, side_by_side):
    """Steps 1-4 into the new folder `out`; what they record, also written to out/STAGES."""
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = make_data(out, scale, seed, cartoonizer)
    walls = dict(data=time.perf_counter() - start)
    run_walls, kill = train_runs(out, scale, seed, out / "commands.log", side_by_side)
    walls.update(run_walls)
    scale_name = next(name for name, values in SCALES.items() if values == scale)
    stages = dict(scale=scale_name, seed=seed, data=data, kill=kill, wall_s=walls,
                  side_by_side=side_by_side)
    (out / STAGES).write_text(json.dumps(stages, indent=1))
    return stages


def make_report(out, stages, scored, logged):
    """learn.json's content from the recorded stages, the scores of evaluate() and the logged
    losses {run: read_losses rows}."""
    scale = SCALES[stages["scale"]]
    baselines, curves, n_val = scored
    cpu = cpu_info()
    flags = ", ".join(name for name, present in cpu["flags"].items() if present)
    precisions = sorted({json.loads((out / name / "config.json").read_text())["precision"]
                         for name in logged})
    return dict(
        title=f"bench/learn.py --scale {stages['scale']}: {scale['iterations']} adversarial "
              f"iterations, batch {scale['batch']}, patch {scale['patch']}, "
              f"{'/'.join(precisions)}, stand-in VGG19 (random He-normal weights), "
              f"V = {n_val} crops; {cpu['model']} ({flags})",
        scale=stages["scale"], settings=dict(scale, seed=stages["seed"], precision="bf16",
                                             side_by_side=stages.get("side_by_side", False)),
        vgg="stand-in: random He-normal weights with the real VGG19 shapes "
            "(whitebox.model.vgg.random_weights), not ImageNet's",
        kid_features="stand-in Inception graph of the tests (tests/inception_standin.py, "
                     "random weights, 16 features at 64x64): not the paper's FID network",
        cartoon_domain="official generator (whitebox_official model-33999), cartoonize.py's "
                       "cartoonizer, --precision fp32 --runtime tf",
        data=stages["data"], n_val=n_val, baselines=baselines, curves=curves,
        losses={name: loss_summary(rows, scale["every"]) for name, rows in logged.items()},
        precision_used={name: json.loads((out / name / "config.json").read_text())["precision"]
                        for name in logged},
        resume=resume_check(out / "fst" / "log.txt", stages["kill"]),
        health=health(out, scale, logged), cpu=cpu_info(), wall_s=stages["wall_s"])


def main(argv=None):
    args = parse_args(argv)
    from whitebox.base.image_io import write_text_atomic
    from whitebox.base.quiet_tf import import_tensorflow

    out = args.out.resolve()
    import_tensorflow()
    generator, cartoonizer = official_cartoonizer()
    if args.report_only:
        stages = json.loads((out / STAGES).read_text())
    else:
        stages = train_stages(out, SCALES[args.scale], args.seed, cartoonizer,
                              args.side_by_side or args.scale == "quick")
    start = time.perf_counter()
    baselines, curves, strips, strip_rows, n_val = evaluate(
        out, SCALES[stages["scale"]], args.strip, generator, cartoonizer)
    walls = stages["wall_s"]
    walls["evaluate"] = time.perf_counter() - start
    runs = (max if stages.get("side_by_side") else sum)(walls[name] for name in RUNS)
    walls["total"] = walls["data"] + walls["pretrain"] + runs + walls["evaluate"]
    logged = {name: read_losses(out / name / "log.txt") for name in ("pretrain", *RUNS)}
    report = make_report(out, stages, (baselines, curves, n_val), logged)
    try:
        draw(out / "learn.png", report, strips, strip_rows)
        report["figure"] = str(out / "learn.png")
    except ImportError:
        report["figure"] = None
        print("matplotlib is not installed: no learn.png (pip install -r "
              "requirements-bench.txt)", file=sys.stderr)
    write_text_atomic(out / "learn.json", json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("baselines", "curves", "resume", "health",
                                             "wall_s", "cpu")}))
    return 0 if report["resume"]["held"] and report["health"]["held"] else 1


def guarded_main():
    """main(), with a failed step (a command that exited non-zero) on one line, exit 1."""
    from whitebox.cli import one_line

    try:
        return main()
    except RuntimeError as err:
        print(f"learn.py: error: {one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    from whitebox.cli import run_command

    sys.exit(run_command(guarded_main))
