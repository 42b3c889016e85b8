"""Does training learn? An offline convergence experiment with the F_st ablation, at small scale.

One command runs it all and writes OUT/learn.json (also printed) and OUT/learn.png:
    .venv/bin/python bench/learn.py              # --scale cpu, into runs/learn-cpu
    .venv/bin/python bench/learn.py --quick      # a check that every step runs
Results and times: docs/TRAINING.md, "Does it learn?". Nothing is downloaded. The steps, each
through the project's command lines or stable functions:
1. data: the reference's test photos (../shared/images) and the sample photos of scikit-image
   and scikit-learn, split by source photo into disjoint sets P (photos), C (cartoon source)
   and V (validation); random square crops at several scales, flipped half the time (PNG).
2. the cartoon domain: the authors' official generator applied to C (and V) by cartoonize.py's
   cartoonizer and loop (fp32, tf): the ideal output of every V crop is known.
3. a stand-in VGG19: random He-normal weights with VGG19's shapes (not ImageNet's features).
4. train.py pretrain, then at once, each from that generator with --deterministic: train.py
   train (F_st in the losses, the reference) killed once with SIGKILL at a random moment past
   its first checkpoint and resumed; its uninterrupted twin (same seed) up to three
   checkpoint intervals; train.py train --no-fst-in-losses (the ablation).
5. every checkpoint scored on V against the official cartoons: PSNR, SSIM (scikit-image), KID
   on the tests' stand-in Inception (not the paper's FID) and PSNR to the photo; baselines:
   the photo itself and the pretrained generator.
6. health: finite losses, checkpoints kept as --keep says; the iterations run both before the
   kill and after the resume, and the twin's from the resume point on, give the same losses
   (the tests' rule, tests/training_helpers.assert_losses_close) and the twin's last
   checkpoint equals the resumed run's bit for bit.
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
    "quick": dict(patch=32, batch=2, pretrain_iterations=8, iterations=12, every=4,
                  train_crops=6, val_crops=2, val_size=32, pretrain_keep=2),
    "cpu": dict(patch=96, batch=4, pretrain_iterations=1000, iterations=600, every=50,
                train_crops=150, val_crops=8, val_size=128, pretrain_keep=2),
    # The cpu scale's patch and batch, shorter and on fewer crops: arms (--arms) in minutes.
    "probe": dict(patch=96, batch=4, pretrain_iterations=300, iterations=60, every=15,
                  train_crops=40, val_crops=8, val_size=128, pretrain_keep=2),
    # The paper's patch and batch, its 50,000 + 100,000 iterations divided by 100.
    "paper": dict(patch=256, batch=16, pretrain_iterations=500, iterations=1000, every=100,
                  train_crops=150, val_crops=8, val_size=256, pretrain_keep=2),
}
# Smallest crop side, as a share of the source photo's short side (the largest is all of it).
MIN_CROP_SHARE = 0.25
# Shares of the source photos that go to V and to C; the rest is P.
SPLIT = {"val": 0.25, "cartoon": 0.35}
# Adversarial arms: train.py train's extra flags. "fst" (the reference) always runs, and is the
# one killed and resumed; TWIN is its uninterrupted copy.
ARMS = {"fst": [], "no_fst": ["--no-fst-in-losses"],
        "no_adversarial": ["--no-surface", "--no-texture"],
        "no_vgg": ["--no-content", "--no-structure"]}
DEFAULT_ARMS = ("fst", "no_fst")
TWIN = "fst_twin"
# learn.png's resolution (with 256 colours the figure stays well under 300 KB, for docs/).
DPI = 80
# What the data and training steps record for the report (read back by --report-only).
STAGES = "stages.json"
LOSS_LINE = re.compile(r"^iter (\d+): (.*)$")


def source_photos():
    """{name: path} of the colour photos at hand offline, sorted: the reference's test photos
    (not ../shared/images/extra: grids and a drawing) and scikit-image's and scikit-learn's
    sample photos (not their charts, drawings, microscopy or space pictures)."""
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
    """Popen of a project command line (`args` after the python executable), output appended
    to log_path; `own_group`: in a new process group, so that the whole group can be killed."""
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
    from whitebox.infer.loader import make_cartoonizer
    from whitebox.infer.options import InferenceOptions
    from whitebox.infer.weights import load_generator_weights

    generator, prefix = load_generator_weights(OFFICIAL, offline=True, progress=False)
    return generator, make_cartoonizer(generator, prefix, InferenceOptions(runtime="tf"))


def make_data(out, scale, seed, cartoonizer):
    """Steps 1-2: crops of P, C and V, the official cartoons of C and V (cartoonize.py's
    loop) and the data lists (train.py make-lists' function)."""
    from whitebox.cli import say
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
                        say, progress=False)
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


def train_until_killed(args, run_dir, kill_at, rng, log_path):
    """Start train.py with `args`, SIGKILL it (its whole process group: the superpixel workers
    too) a random fraction of a second after it has logged iteration `kill_at`, and return the
    last iteration it logged."""
    def last_logged():
        rows = read_losses(run_dir / "log.txt") if (run_dir / "log.txt").is_file() else []
        return rows[-1][0] if rows else -1

    proc = launch(args, log_path, f"   (killed after iteration {kill_at})", own_group=True)
    try:
        while last_logged() < kill_at:
            if proc.poll() is not None:
                raise RuntimeError(f"train.py ended (exit {proc.returncode}) before "
                                   f"iteration {kill_at}; see {log_path}")
            time.sleep(0.1)
        time.sleep(float(rng.uniform(0, 0.2)))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return last_logged()


def pretrain_args(out, scale, seed):
    """train.py pretrain's command line: 4 checkpoints written, --keep of them kept."""
    return ["train.py", "pretrain", "--data-lists", out / "lists", "--out", out / "pretrain",
            "--batch-size", scale["batch"], "--patch-size", scale["patch"],
            "--iterations", scale["pretrain_iterations"], "--save-every", pretrain_every(scale),
            "--keep", scale["pretrain_keep"], "--sample-every", scale["pretrain_iterations"],
            "--print-every", 1, "--seed", seed, "--precision", "bf16", "--no-progress",
            "--deterministic"]


def train_args(out, name, scale, seed, iterations=None):
    """train.py train's command line for the arm `name` (ARMS; TWIN: fst's), every checkpoint
    kept for the evaluation; `iterations`: fewer than the scale's."""
    return ["train.py", "train", "--data-lists", out / "lists", "--out", out / name,
            "--init-from", out / "pretrain" / "checkpoints", "--vgg", out / "vgg_standin.npz",
            "--batch-size", scale["batch"], "--patch-size", scale["patch"],
            "--iterations", iterations or scale["iterations"], "--save-every", scale["every"],
            "--keep", train_keep(scale), "--sample-every", scale["iterations"],
            "--print-every", 1, "--seed", seed, "--precision", "bf16", "--no-progress",
            "--deterministic", *ARMS.get(name, [])]


def twin_iterations(scale):
    """The twin's length: three checkpoint intervals, past the kill (see kill_point)."""
    return min(3 * scale["every"], scale["iterations"])


def kill_point(scale, rng):
    """A random iteration a quarter to half an interval past the first checkpoint: some
    iterations run twice, the twin stays short and the resumed run continues for long."""
    every = scale["every"]
    return every + int(rng.integers(every // 4, every // 2 + 1))


def train_runs(out, scale, seed, arms, log_path):
    """Step 4: pretrain, then the arms and the twin at once, "fst" killed once and resumed.
    Returns ({phase: wall seconds}, the kill record)."""
    from whitebox.model import vgg

    vgg.save_npz(vgg.random_weights(seed), out / "vgg_standin.npz")
    start = time.perf_counter()
    command(pretrain_args(out, scale, seed), log_path)
    walls = dict(pretrain=time.perf_counter() - start)
    rng = np.random.default_rng(seed + 1)
    kill_at = kill_point(scale, rng)
    start = time.perf_counter()
    others = [train_args(out, TWIN, scale, seed, twin_iterations(scale))]
    others += [train_args(out, name, scale, seed) for name in arms if name != "fst"]
    beside = [launch(args, log_path) for args in others]
    try:
        kill = dict(after_iteration=kill_at, last_logged=train_until_killed(
            train_args(out, "fst", scale, seed), out / "fst", kill_at, rng, log_path))
        command(["train.py", "train", "--out", out / "fst", "--resume", "--no-progress"],
                log_path)
        for proc, args in zip(beside, others):
            finish(proc, args, log_path)
    finally:
        for proc in beside:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    walls["adversarial"] = time.perf_counter() - start
    return walls, kill


def compare_losses(a, b, weights):
    """The losses of the iterations both `a` and `b` hold ({iteration: {loss: value}}): how
    many, the largest relative difference |x - y| / max(|x|, |y|) and where, and whether each
    iteration agrees by the tests' rule (training_helpers.assert_losses_close, rtol 1e-5 of
    the loss or of its share of the objective)."""
    from tests.training_helpers import assert_losses_close

    common = sorted(a.keys() & b.keys())
    worst, where, held = 0.0, None, bool(common)
    for i in common:
        for k, x in a[i].items():
            rel = abs(x - b[i][k]) / max(abs(x), abs(b[i][k])) if x != b[i][k] else 0.0
            if rel > worst:
                worst, where = rel, f"iteration {i} {k}: {x} vs {b[i][k]}"
        try:
            assert_losses_close(a[i], b[i], weights)
        except AssertionError:
            held = False
    return dict(iterations=common[:1] + common[-1:], compared=len(common),
                max_rel_diff=worst, worst=where, held=held)


def compare_checkpoints(a, b):
    """Every variable of the checkpoints with prefixes `a` and `b` (generator, discriminators,
    Adam slots, colour-shift RNG, iteration): how many, the largest absolute difference, and
    whether they are bit-equal (the same names, shapes and bytes)."""
    import tensorflow as tf

    ra, rb = tf.train.load_checkpoint(str(a)), tf.train.load_checkpoint(str(b))
    names = sorted(n for n in ra.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n)
    if names != sorted(n for n in rb.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n):
        return dict(variables=len(names), max_abs_diff=None, bit_equal=False)
    pairs = [(np.asarray(ra.get_tensor(n)), np.asarray(rb.get_tensor(n))) for n in names]
    diffs = [float(np.max(np.abs(x.astype(np.float64) - y), initial=0.0)) for x, y in pairs]
    return dict(variables=len(names), max_abs_diff=max(diffs),
                bit_equal=all(x.dtype == y.dtype and x.tobytes() == y.tobytes()
                              for x, y in pairs))


def resume_check(out, kill, twin_end):
    """fst's log: the iterations that the killed and the resumed process both ran give the same
    losses; from the resume point on, fst's losses equal its uninterrupted twin's, and so does
    the checkpoint at the twin's end."""
    from whitebox.train.config import config_from_json

    weights = config_from_json((out / "fst" / "config.json").read_text()).active_weights()
    rows = read_losses(out / "fst" / "log.txt")
    first, last = dict(reversed(rows)), dict(rows)
    twice = sorted(i for i in first if first[i] is not last[i])
    resumed_at = min(twice, default=None)
    twin = dict(read_losses(out / TWIN / "log.txt"))
    after = {i: v for i, v in last.items() if resumed_at is not None and i >= resumed_at}
    report = dict(
        kill, resumed_at_iteration=resumed_at,
        killed_vs_resumed=compare_losses({i: first[i] for i in twice},
                                         {i: last[i] for i in twice}, weights),
        twin_vs_resumed=compare_losses(twin, after, weights),
        twin_checkpoint=dict(iteration=twin_end, **compare_checkpoints(
            out / TWIN / "checkpoints" / f"ckpt-{twin_end}",
            out / "fst" / "checkpoints" / f"ckpt-{twin_end}")))
    report["held"] = (report["killed_vs_resumed"]["held"] and report["twin_vs_resumed"]["held"]
                      and report["twin_vs_resumed"]["iterations"][-1:] == [twin_end - 1])
    return report


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
    for name in runs_rows:
        if name == "pretrain":
            keep = scale["pretrain_keep"]
            saves = saved_at(scale["pretrain_iterations"], pretrain_every(scale))
        else:
            keep = train_keep(scale)
            saves = saved_at(twin_iterations(scale) if name == TWIN else scale["iterations"],
                             scale["every"])
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
        from whitebox.evaluate.inception import load_extractor

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

        from whitebox.evaluate.distances import kernel_inception_distance

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


def evaluate(out, scale, arms, strip_count, generator, cartoonizer):
    """Step 5: the baselines and the curve of each arm (every checkpoint present), and for the
    figure the V images {column: [BGR image per V crop]} of the photos, the official cartoons,
    the pretrained generator and `strip_count` evenly spaced checkpoints of each run, with the
    indices of the first crop of each V source photo. Returns (baselines, curves, strips,
    rows, number of V crops)."""
    scorer = Scorer(out, out / "inception_standin", generator, cartoonizer)
    pre_prefix = str(out / "pretrain" / "checkpoints"
                     / f"ckpt-{checkpoint_numbers(out / 'pretrain')[-1]}")
    pre_images = scorer.cartoons(pre_prefix)
    with np.errstate(divide="ignore"):  # PSNR of the photo to itself: infinite
        identity = scorer.score(scorer.photos)
    del identity["psnr_to_photo"]
    baselines = dict(identity=identity, pretrained=scorer.score(pre_images))
    strips = {"photo": scorer.photos, "official": scorer.official, "pretrained": pre_images}
    curves = {}
    every, total = scale["every"], scale["iterations"]
    shown = set(np.linspace(0, total, strip_count + 1).round().astype(int)[1:] // every * every)
    for name in arms:
        curve = [dict(iteration=0, **baselines["pretrained"])]
        for it in checkpoint_numbers(out / name):
            prefix = out / name / "checkpoints" / f"ckpt-{it}"
            images = scorer.cartoons(str(prefix))
            curve.append(dict(iteration=it, **scorer.score(images)))
            if it in shown:
                strips[f"{SHORT[name]}@{it}"] = images
        curves[name] = curve
    sources = [name.rsplit("_", 1)[0] for name in scorer.names]
    rows = [k for k, source in enumerate(sources) if source not in sources[:k]]
    return baselines, curves, strips, rows, len(scorer.names)


def loss_summary(rows, every):
    """Mean of each loss over each block of `every` iterations (the last value logged for an
    iteration counts), for the JSON."""
    last, blocks = dict(rows), {}
    for i in sorted(last):
        blocks.setdefault(i // every, []).append(last[i])
    return [dict(iterations=[b * every, b * every + len(v) - 1],
                 **{k: float(np.mean([x[k] for x in v])) for k in v[0]})
            for b, v in sorted(blocks.items())]


PANELS = (("psnr", "PSNR to official (dB), higher is better"),
          ("ssim", "SSIM to official, higher is better"),
          ("kid", "KID to official (stand-in Inception)"),
          ("psnr_to_photo", "PSNR to the photo (dB)"))
RUN_LABELS = {"fst": "F_st in losses (reference)", "no_fst": "--no-fst-in-losses",
              "no_adversarial": "--no-surface --no-texture",
              "no_vgg": "--no-content --no-structure"}
SHORT = {"fst": "F_st", "no_fst": "no F_st", "no_adversarial": "no adv.", "no_vgg": "no VGG"}


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
    ax.set_xticklabels(list(strips), fontsize=8)
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
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Results: docs/TRAINING.md.")
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu",
                        help="wall time on 2 shared cores. cpu (default): patch 96, batch 4, "
                             "1,000 + 2 x 600 iterations, 30-40 min idle, about an hour under "
                             "a load of 12 (both estimated); quick: a check that every step runs, "
                             "74 s idle, 2 min under a load of 5, 4 under 12; probe: patch 96, batch 4, "
                             "300 + 60 iterations, for --arms, 12 min under a load of 12 with three "
                             "arms; paper: patch 256, batch 16, for a GPU (not run)")
    parser.add_argument("--quick", dest="scale", action="store_const", const="quick",
                        help="same as --scale quick")
    parser.add_argument("--out", type=Path,
                        help="a new or empty folder (default: runs/learn-SCALE)")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(DEFAULT_ARMS),
                        metavar="ARM",
                        help=f"adversarial runs: {', '.join(ARMS)}; fst, the reference, always "
                             "runs (default: fst no_fst)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strip", type=int, default=4, help="checkpoints shown per run")
    parser.add_argument("--report-only", action="store_true",
                        help="score the runs that an earlier learn.py left in --out again and "
                             "rewrite learn.json and learn.png (no data, no training)")
    args = parser.parse_args(argv)
    args.out = args.out or REPO / "runs" / f"learn-{args.scale}"
    args.arms = ["fst"] + [name for name in dict.fromkeys(args.arms) if name != "fst"]
    if args.report_only:
        if not (args.out / STAGES).is_file():
            parser.error(f"{args.out}: holds no finished training ({STAGES} is missing)")
    elif args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"{args.out}: exists and is not an empty folder")
    if not (OFFICIAL / "checkpoint").is_file():
        parser.error(f"{OFFICIAL}: the authors' checkpoint is needed for the cartoon domain")
    return args


def train_stages(out, args, cartoonizer):
    """Steps 1-4 into the new folder `out`; what they record, also written to out/STAGES."""
    out.mkdir(parents=True, exist_ok=True)
    scale = SCALES[args.scale]
    start = time.perf_counter()
    data = make_data(out, scale, args.seed, cartoonizer)
    walls = dict(data=time.perf_counter() - start)
    run_walls, kill = train_runs(out, scale, args.seed, args.arms, out / "commands.log")
    walls.update(run_walls)
    stages = dict(scale=args.scale, seed=args.seed, arms=args.arms, data=data, kill=kill,
                  wall_s=walls)
    (out / STAGES).write_text(json.dumps(stages, indent=1))
    return stages


def make_report(out, stages, scored, logged):
    """learn.json's content from the recorded stages, the scores of evaluate() and the logged
    losses {run: read_losses rows}."""
    scale = SCALES[stages["scale"]]
    baselines, curves, n_val = scored
    cpu = cpu_info()
    flags = ", ".join(name for name, present in cpu["flags"].items() if present)
    precision = {name: json.loads((out / name / "config.json").read_text())["precision"]
                 for name in logged}
    return dict(
        title=f"bench/learn.py --scale {stages['scale']}: {scale['iterations']} adversarial "
              f"iterations, batch {scale['batch']}, patch {scale['patch']}, "
              f"{'/'.join(sorted(set(precision.values())))}, stand-in VGG19 (random He-normal "
              f"weights), V = {n_val} crops; {cpu['model']} ({flags})",
        scale=stages["scale"], arms=stages["arms"],
        settings=dict(scale, seed=stages["seed"], precision="bf16", deterministic=True),
        vgg="stand-in: random He-normal weights with the real VGG19 shapes "
            "(whitebox.model.vgg.random_weights), not ImageNet's",
        kid_features="stand-in Inception graph of the tests (tests/inception_standin.py, "
                     "random weights, 16 features at 64x64): not the paper's FID network",
        cartoon_domain="official generator (whitebox_official model-33999), cartoonize.py's "
                       "cartoonizer, --precision fp32 --runtime tf",
        data=stages["data"], n_val=n_val, baselines=baselines, curves=curves,
        losses={name: loss_summary(rows, scale["every"]) for name, rows in logged.items()},
        precision_used=precision,
        resume=resume_check(out, stages["kill"], twin_iterations(scale)),
        health=health(out, scale, logged), cpu=cpu, wall_s=stages["wall_s"])


def main(argv=None):
    args = parse_args(argv)
    from whitebox.base.files import write_text_atomic
    from whitebox.base.quiet_tf import import_tensorflow

    out = args.out.resolve()
    import_tensorflow()
    generator, cartoonizer = official_cartoonizer()
    if args.report_only:
        stages = json.loads((out / STAGES).read_text())
    else:
        stages = train_stages(out, args, cartoonizer)
    start = time.perf_counter()
    baselines, curves, strips, strip_rows, n_val = evaluate(
        out, SCALES[stages["scale"]], stages["arms"], args.strip, generator, cartoonizer)
    walls = stages["wall_s"]
    walls["evaluate"] = time.perf_counter() - start
    walls["total"] = sum(walls[k] for k in ("data", "pretrain", "adversarial", "evaluate"))
    logged = {name: read_losses(out / name / "log.txt")
              for name in ("pretrain", *stages["arms"], TWIN)}
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
    from whitebox.base.errors import one_line

    try:
        return main()
    except RuntimeError as err:
        print(f"learn.py: error: {one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    from whitebox.cli import run_command

    sys.exit(run_command(guarded_main, "learn.py"))
