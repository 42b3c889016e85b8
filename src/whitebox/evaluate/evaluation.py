"""Scoring cartoonizers as the paper does: FID (and KID) between image sets, and a checkpoint's
FID to cartoon and FID to photo (docs/EVALUATION.md).

The paper's protocol (`paper_report`, and `CheckpointScorer` for many checkpoints): the photos
are cartoonized exactly as cartoonize.py does (`whitebox.infer.batch`'s plan and loop), then
compared with a cartoon set (FID to cartoon) and with the very photos cartoonized (FID to
photo). Sets are folders of images or `.npz` statistics caches. Reports are dicts for JSON.
"""
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from whitebox.base import notice
from whitebox.base.errors import WhiteboxError, display_path, output_problem
from whitebox.base.files import write_text_atomic
from whitebox.base.image_io import ImageError, list_images
from whitebox.evaluate import DEFAULT_BATCH
from whitebox.evaluate.ablation import load_matrix, run_ablation, variant_configs
from whitebox.evaluate.distances import MetricsError
from whitebox.evaluate.inception import load_extractor, network_sha256
from whitebox.evaluate.metrics import (
    PAPER_VALUES,
    compare,
    embed_folder,
    embed_paths,
    features_to_set,
    load_cache,
    load_set,
    save_cache,
)
from whitebox.infer.batch import OVERWRITES_INPUT, plan_jobs, run_plan
from whitebox.infer.loader import load_cartoonizer
from whitebox.infer.options import InferenceOptions
from whitebox.infer.video import is_video


@dataclass(frozen=True)
class Kid:
    """KID beside FID when `on`: `subsets` rounds of `subset_size` images per side (capped at
    n), drawn with `seed`."""
    on: bool = False
    subsets: int = 100
    subset_size: int = 1000
    seed: int = 0

    def compare(self, a, b):
        """metrics.compare of the FeatureSets `a` and `b` with these settings."""
        return compare(a, b, self.on, self.subsets, self.subset_size, self.seed)


@dataclass(frozen=True)
class PaperRun:
    """`paper_report`'s inputs, as evaluate.py paper's options (output None: a temporary
    folder; markdown None: no table file)."""
    photos: str
    cartoons: str
    weights: Optional[str] = None
    output: Optional[str] = None
    fmt: str = "same"
    offline: bool = False
    markdown: Optional[str] = None
    recursive: bool = False
    overwrite: bool = False


class Extractor:
    """The feature network at `path`, loaded on first call (comparing two caches needs none)."""

    def __init__(self, path, batch_size=DEFAULT_BATCH):
        self.path, self.batch_size, self._net = path, batch_size, None

    def __call__(self):
        if self._net is None:
            if self.path is None:
                raise MetricsError("--inception is needed to embed a folder")
            self._net = load_extractor(self.path, self.batch_size)
        return self._net

    def describe(self, fallback):
        """The loaded network's description, else what the cache `fallback` records."""
        if self._net is not None:
            return self._net.describe()
        info = dict(name=fallback.extractor, sha256=fallback.sha256,
                    image_size=list(fallback.image_size), feature_dim=int(fallback.mean.size))
        if self.path is not None:
            info["file"] = str(self.path)
            if network_sha256(self.path) != fallback.sha256:
                raise MetricsError(f"{fallback.source} was embedded by a network with sha256 "
                                   f"{fallback.sha256[:12]}..., not by {self.path}")
        return info


def fid_report(a, b, extractor, recursive=False, progress=True, kid=Kid(), say=notice):
    """FID (and KID) between the sets `a` and `b` (folders or caches): a report naming both
    sets, the Extractor's network and any warnings. `say` gets a line per skipped file."""
    a = load_set(a, extractor, recursive, progress, say=say)
    b = load_set(b, extractor, recursive, progress, say=say)
    result = kid.compare(a, b)
    report = dict(fid=result["fid"])
    if "kid" in result:
        report["kid"] = result["kid"]
    report.update(a=a.describe(), b=b.describe(), extractor=extractor.describe(a),
                  warnings=result["warnings"])
    return report


def stats_report(folder, output, extractor, recursive=False, progress=True,
                 keep_features=True, say=notice):
    """Embed `folder` once and save its statistics cache to `output` (.npz, replaced only when
    it is one: else MetricsError); the report. `say` gets a line per skipped file."""
    check_can_write(Path(output))
    if Path(output).exists() or Path(output).is_symlink():
        try:
            load_cache(output)
        except MetricsError:
            raise MetricsError(f"{display_path(output)} exists and is not a statistics cache; "
                               f"choose a new name") from None
    fset = embed_folder(folder, extractor(), recursive, progress, say=say)
    save_cache(output, fset, keep_features=keep_features)
    return dict(cache=str(output), set=fset.describe(), extractor=extractor.describe(fset))


def _fmt(value, digits=2):
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(report):
    """The paper's two numbers beside ours, n and the extractor below."""
    sets, ext = report["sets"], report["extractor"]
    lines = ["| metric | this run | paper |", "|---|---:|---:|"]
    for key, label in [("fid_to_cartoon", "FID to cartoon"), ("fid_to_photo", "FID to photo")]:
        lines.append(f"| {label} | {_fmt(report[key])} | {_fmt(PAPER_VALUES[key])} |")
    for key, label in [("kid_to_cartoon", "KID to cartoon (×10³)"),
                       ("kid_to_photo", "KID to photo (×10³)")]:
        if key in report:
            kid = report[key]
            lines.append(f"| {label} | {kid['mean'] * 1e3:.2f} ± {kid['std'] * 1e3:.2f} | – |")
    lines += ["",
              f"n: {sets['cartoonized']['n']} cartoonized photos "
              f"({report['cartoonize']['failed']} failed), {sets['cartoons']['n']} cartoons, "
              f"{sets['photos']['n']} photos (the paper: 1,978 photos, 3,011 cartoons). "
              f"Extractor: {ext['name']}, sha256 {ext['sha256']}, images resized to "
              f"{ext['image_size'][0]}x{ext['image_size'][1]}.",
              "Comparable with the paper only with its test photos and cartoon set, the genuine "
              "2015-12-05 Inception graph, and similar n (FID depends on n)."]
    for warning in report["warnings"]:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines) + "\n"


def _set_files(path, recursive):
    """The files of a set: a folder's images as `load_set` lists them, or the cache file;
    none when unlistable (`load_set` says why later)."""
    if path is None or not Path(path).exists():
        return []
    if not Path(path).is_dir():
        return [path]
    try:
        return list_images(path, recursive)
    except ImageError:
        return []


def _joins_set(target, folder, recursive):
    """Whether `target` would be one of the images `load_set` lists in `folder`."""
    parent, folder = target.resolve().parent, Path(folder).resolve()
    return parent == folder or (recursive and folder in parent.parents)


def plan_photos(photos, out, fmt="same", recursive=False, overwrite=False, cartoons=None):
    """The images under the folder `photos` (its tree with `recursive`, mirrored under `out`)
    as a whitebox.infer.batch.Plan, planned as cartoonize.py plans them.

    Raises MetricsError, before anything is written, when `photos` is not a readable folder,
    `out` cannot be a folder, an output would replace a photo or a file of the cartoon set
    `cartoons` (folder, cache or None) or join its folder, or exists already without
    `overwrite`.
    """
    if not Path(photos).is_dir():
        raise MetricsError(f"{photos}: no such folder of photos")
    if output_problem(out):
        raise MetricsError(output_problem(out))
    plan = plan_jobs([photos], out, fmt=fmt, recursive=recursive, overwrite=True,
                     keep=_set_files(cartoons, recursive))
    plan.jobs = [job for job in plan.jobs if not is_video(job.source)]
    plan.failed = [(path, reason) for path, reason in plan.failed if not is_video(path)]
    for path, reason in plan.failed:
        if path == Path(photos):
            raise MetricsError(f"{photos}: {reason}")
        if reason.endswith(OVERWRITES_INPUT):
            raise MetricsError(f"{display_path(path)}: {reason} (choose another --output)")
    cartoon_folder = cartoons is not None and Path(cartoons).is_dir()
    for job in plan.jobs:
        if cartoon_folder and _joins_set(job.target, cartoons, recursive):
            raise MetricsError(f"{display_path(job.source)}: output {display_path(job.target)} "
                               f"would join the cartoon set {display_path(cartoons)} (choose "
                               f"another --output)")
    existing = [job.target for job in plan.jobs
                if job.target.exists() or job.target.is_symlink()]
    if existing and not overwrite:
        raise MetricsError(f"{display_path(out)} already holds {len(existing)} of the outputs "
                           f"(such as {display_path(existing[0])}): add --overwrite to replace "
                           f"them, or choose another --output")
    return plan


def photo_files(plan):
    """Every photo of a `plan_photos` plan, sorted, cartoonizable or not."""
    return sorted([job.source for job in plan.jobs] + [path for path, _ in plan.failed])


def embed_photos(plan, net, source, progress=True, say=notice):
    """FeatureSet of every photo of a `plan_photos` plan, named `source`."""
    features, skipped = embed_paths(photo_files(plan), net, progress, label="photos", say=say)
    return features_to_set(features, net, source, "folder", skipped)


def cartoonizer_for(weights=None, offline=False, progress=True, say=notice):
    """cartoonize.py's Cartoonizer (default options, notices to `say`); MetricsError for bad
    weights."""
    try:
        return load_cartoonizer(weights, InferenceOptions(), offline, say, progress)
    except WhiteboxError as err:
        raise MetricsError(f"could not load the weights: {err}") from None


def _identity(path):
    """(inode, mtime) of a file, or None: new for an output this run replaced."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def cartoonize_and_embed(plan, cartoonizer, out, net, progress=True, say=notice):
    """Run the `plan_photos` plan (made before anything was written to `out`) through
    `cartoonizer` with cartoonize.py's loop, then embed with `net` the outputs this run wrote
    (not a file an earlier run left); `say` gets the loop's lines. Returns (FeatureSet of the
    cartoonized photos, counts: photos, cartoonized, failed, not_cartoonized: the failed
    photos' paths).
    """
    before = {job.target: _identity(job.target) for job in plan.jobs}
    run_plan(plan, cartoonizer, say, progress)
    done = [job for job in plan.jobs
            if _identity(job.target) not in (None, before[job.target])]
    written = {job.source for job in done}
    features, skipped = embed_paths([job.target for job in done], net, progress,
                                    label="cartoonized", say=say)
    generated = features_to_set(features, net, out, "folder", skipped)
    everything = photo_files(plan)
    missing = [str(path) for path in everything if path not in written]
    return generated, dict(photos=len(everything), cartoonized=len(done), failed=len(missing),
                           not_cartoonized=missing)


def count_warnings(generated, photos, counts):
    """A line saying how many photos went into each side, unless all did."""
    given = counts["photos"]
    if generated.count == photos.count == given:
        return []
    reasons = []
    if counts["failed"]:
        reasons.append(f"not cartoonized: {counts['failed']}")
    if generated.skipped:
        reasons.append(f"cartoonized images unreadable: {len(generated.skipped)}")
    if photos.skipped:
        reasons.append(f"photos unreadable for the network: {len(photos.skipped)}")
    return [f"of the {given} photos given, {generated.count} went in as cartoonized images "
            f"and {photos.count} as photos ({', '.join(reasons)}; see stderr): FID to photo "
            f"compares sets of different n"
            if generated.count != photos.count else
            f"of the {given} photos given, only {photos.count} went in on each side "
            f"({', '.join(reasons)}; see stderr)"]


def paper_scores(generated, cartoons, photos, counts, kid=Kid()):
    """FID (and KID) to cartoon and to photo of the cartoonized set; its warnings include any
    difference between the photos given and those cartoonized (`counts`)."""
    to_cartoon, to_photo = kid.compare(generated, cartoons), kid.compare(generated, photos)
    scores = dict(fid_to_cartoon=to_cartoon["fid"], fid_to_photo=to_photo["fid"])
    if kid.on:
        scores.update(kid_to_cartoon=to_cartoon["kid"], kid_to_photo=to_photo["kid"])
    scores["warnings"] = (count_warnings(generated, photos, counts)
                          + sorted(set(to_cartoon["warnings"] + to_photo["warnings"])))
    return scores


def check_can_write(path):
    """Refuse, before the long work, a file path that is a folder or lies under a file."""
    if path.is_dir():
        raise MetricsError(f"{path}: is a folder, not a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise MetricsError(f"{path}: cannot write ({parent} is not a folder)")


def check_not_an_input(path, plan, cartoons, recursive):
    """MetricsError when the file `path` is a photo, a file of `cartoons` or an output."""
    taken = [*photo_files(plan), *_set_files(cartoons, recursive),
             *(job.target for job in plan.jobs)]
    if Path(path).resolve() in {Path(p).resolve() for p in taken}:
        raise MetricsError(f"--markdown {display_path(path)} would overwrite an input or an "
                           f"output of the run (choose another file)")


def paper_report(run, extractor, kid=Kid(), progress=True, say=notice):
    """The paper's protocol for the PaperRun `run`: FID (and KID) to the cartoon set and to the
    photos. The report holds the scores, the paper's values, the counts, the sets, the network,
    the warnings and the Markdown table (also written to `run.markdown`). `say` gets the lines
    on the way. Outputs or a `markdown` that would replace an input are refused."""
    if run.markdown:
        check_can_write(Path(run.markdown))
    with tempfile.TemporaryDirectory(prefix="whitebox-eval-") as scratch:
        out = Path(run.output or scratch)
        plan = plan_photos(run.photos, out, run.fmt, run.recursive, run.overwrite, run.cartoons)
        if run.markdown:
            check_not_an_input(run.markdown, plan, run.cartoons, run.recursive)
        net = extractor()  # fail on a bad network file before the long work
        cartoonizer = cartoonizer_for(run.weights, run.offline, progress, say)
        photo_set = embed_photos(plan, net, run.photos, progress, say)
        generated, counts = cartoonize_and_embed(plan, cartoonizer, out, net, progress, say)
        if not run.output:
            generated.source = "(temporary folder)"
    cartoon_set = load_set(run.cartoons, extractor, run.recursive, progress, "cartoons", say)
    report = paper_scores(generated, cartoon_set, photo_set, counts, kid)
    warnings = report.pop("warnings")
    report.update(
        paper=dict(PAPER_VALUES, n_photos=1978, n_cartoons=3011),
        cartoonize=dict(weights=str(run.weights or "cartoonize.py default"), format=run.fmt,
                        output=str(run.output) if run.output else None, **counts),
        sets=dict(cartoonized=generated.describe(), cartoons=cartoon_set.describe(),
                  photos=photo_set.describe()),
        extractor=net.describe(),
        warnings=warnings)
    table = report["markdown"] = markdown_table(report)
    if run.markdown:
        try:
            write_text_atomic(run.markdown, table)
        except OSError as err:
            raise MetricsError(f"{run.markdown}: cannot write ({err.strerror or err})")
    return report


class CheckpointScorer:
    """The paper's protocol for many checkpoints, the photos and cartoons embedded once:
    `scorer(checkpoint, out)` cartoonizes the photos into `out`; a dict of scores and counts.
    `say` gets the lines on the way.
    """

    def __init__(self, photos, cartoons, inception, fmt="same", batch_size=DEFAULT_BATCH,
                 kid=Kid(), progress=True, say=notice):
        self.photos, self.fmt, self.kid, self.progress, self.say = photos, fmt, kid, progress, say
        self.net = load_extractor(inception, batch_size)
        self.cartoons = load_set(cartoons, lambda: self.net, progress=progress,
                                 label="cartoons", say=say)
        with tempfile.TemporaryDirectory(prefix="whitebox-eval-") as scratch:
            self.photo_set = embed_photos(plan_photos(photos, scratch, fmt), self.net, photos,
                                          progress, say)

    def __call__(self, checkpoint, out):
        plan = plan_photos(self.photos, out, self.fmt, overwrite=True)
        cartoonizer = cartoonizer_for(checkpoint, True, self.progress, self.say)
        generated, counts = cartoonize_and_embed(plan, cartoonizer, out, self.net,
                                                 self.progress, self.say)
        scores = paper_scores(generated, self.cartoons, self.photo_set, counts, self.kid)
        scores.update(n_cartoonized=generated.count, n_cartoons=self.cartoons.count,
                      n_photos=self.photo_set.count, cartoonize_failed=counts["failed"])
        return scores

    def outputs(self, photos, out):
        """Where `scorer(checkpoint, out)` put each of `photos`' cartoon (None if nowhere)."""
        targets = []
        for photo in photos:
            jobs = plan_jobs([photo], out, fmt=self.fmt, overwrite=True).jobs
            targets.append(jobs[0].target if jobs else None)
        return targets


def ablate(matrix, base, out_dir, photos, cartoons, inception, fmt="same", grid=6,
           batch_size=DEFAULT_BATCH, kid=False, kid_subsets=100, kid_subset_size=1000,
           retry_failed=False, progress=True, say=notice):
    """Train every variant of `matrix` (ablation.load_matrix's) from the TrainConfig values
    `base` under `out_dir`, score each with a CheckpointScorer, and draw the first `grid`
    photos of each in ablation.png; `say` gets a line per variant. Returns run_ablation's
    rows.
    """
    name, variants = load_matrix(matrix)
    variant_configs(variants, base, out_dir)  # a bad setting is refused before the embedding
    scorer = CheckpointScorer(photos, cartoons, inception, fmt, batch_size,
                              Kid(kid, kid_subsets, kid_subset_size), progress, say)
    grid_photos = list_images(photos)[:grid]
    return run_ablation(variants, base, out_dir, scorer, grid_photos,
                        lambda eval_dir: scorer.outputs(grid_photos, eval_dir), matrix=name,
                        retry_failed=retry_failed, extractor=scorer.net.describe(),
                        progress=progress, say=say)
