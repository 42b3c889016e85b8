"""The folder loop of cartoonize.py: which output each input gets, then read -> cartoonize ->
write for every file, one failure never stopping the others.

Decoding of the next image and encoding of the last one run in worker threads while the
generator works on the current one. Videos (by extension) keep their name and container
whatever the output format, and are processed after the images by a separate callable.
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from whitebox.image_io import IMAGE_EXTENSIONS, ImageError, decode_bgr, read_file, write_atomic
from whitebox.video import VIDEO_EXTENSIONS, VideoError, is_video

FORMATS = {"png": ".png", "jpg": ".jpg"}


@dataclass
class Job:
    """One input file and the output path planned for it."""
    source: Path
    target: Path


@dataclass
class Plan:
    """Jobs to run, plus inputs already settled: (path, reason) lists."""
    jobs: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def _target_name(relative, fmt):
    """Output path relative to the output folder: same name, or the format's extension
    (videos always keep theirs)."""
    if fmt == "same" or is_video(relative):
        return relative
    return relative.with_suffix(FORMATS[fmt])


def _folder_files(folder, recursive, exclude):
    """(file, path relative to folder) for visible image files, sorted; and ignored others."""
    images, others = [], []
    walker = os.walk(folder) if recursive else [(folder, [], os.listdir(folder))]
    for root, dirs, names in walker:
        root = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (root / d).resolve() != exclude)
        for name in sorted(names):
            path = root / name
            if name.startswith(".") or not path.is_file():
                continue
            known = path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
            bucket = images if known else others
            bucket.append((path, path.relative_to(folder)))
    return images, others


def plan_jobs(inputs, output_dir, fmt="same", recursive=False, overwrite=False):
    """Decide the output of every input; nothing is read or written here.

    inputs: files or folders. A folder contributes its image files (by extension; with
    `recursive`, its whole tree, mirrored under output_dir). Refused: outputs that would
    overwrite an input, two inputs with one output. Skipped: existing outputs unless
    `overwrite`, files in folders without an image extension.
    """
    output_dir = Path(output_dir)
    out_resolved = output_dir.resolve()
    plan, claimed = Plan(), {}
    candidates = []
    for item in map(Path, inputs):
        if item.is_dir():
            images, others = _folder_files(item, recursive, out_resolved)
            candidates += images
            plan.skipped += [(p, "not an image file extension") for p, _ in others]
        elif item.exists():
            candidates.append((item, Path(item.name)))
        else:
            plan.failed.append((item, "no such file or folder"))
    sources = {p.resolve() for p, _ in candidates}
    for source, relative in candidates:
        target = output_dir / _target_name(relative, fmt)
        resolved = target.resolve()
        if resolved in sources:
            plan.failed.append((source, f"output {target} would overwrite an input"))
        elif resolved in claimed:
            plan.failed.append((source, f"output {target} is already the output of "
                                        f"{claimed[resolved]}"))
        elif target.exists() and not overwrite:
            claimed[resolved] = source
            plan.skipped.append((source, f"output {target} exists (use --overwrite)"))
        else:
            claimed[resolved] = source
            plan.jobs.append(Job(source, target))
    return plan


def _read(job):
    """A job's input bytes; returns (bytes, None) or (None, reason)."""
    try:
        return read_file(job.source), None
    except ImageError as err:
        return None, str(err)


def _decode(data, alpha):
    """Decode input bytes; returns (image, None) or (None, reason)."""
    try:
        return decode_bgr(data, alpha), None
    except ImageError as err:
        return None, str(err)


def _save(job, image):
    """Write a job's output; returns None or the reason it failed."""
    try:
        write_atomic(job.target, image)
        return None
    except ImageError as err:
        return str(err)
    except OSError as err:
        return f"cannot write {job.target}: {err.strerror or err}"


def run_plan(plan, cartoonize, progress=True, alpha="ignore", video=None):
    """Run every job with `cartoonize` (uint8 BGR -> uint8 BGR); report and count.

    Prints one line per skipped or failed input ('skipped PATH: reason' / 'failed PATH:
    reason') and a closing summary, all to stderr. `alpha` goes to image_io.decode_bgr.
    Video jobs go to `video(source, target, progress)`, which raises VideoError on failure
    (without it they fail). Returns the counts as a dict: done, skipped, failed, seconds.
    """
    start = time.perf_counter()
    videos = [job for job in plan.jobs if is_video(job.source)]
    if videos:
        plan = Plan([job for job in plan.jobs if not is_video(job.source)],
                    plan.skipped, plan.failed)
    bar = tqdm(total=len(plan.jobs), unit="img", disable=not progress or not plan.jobs,
               dynamic_ncols=True)
    for path, reason in plan.skipped:
        bar.write(f"skipped {path}: {reason}", file=sys.stderr)
    failed = list(plan.failed)
    for path, reason in failed:
        bar.write(f"failed {path}: {reason}", file=sys.stderr)
    done = 0
    # Worker threads read the next files and encode finished outputs; decoding stays in this
    # thread, because it silences fd 2 (libpng, libjpeg) and would swallow the lines we print.
    with ThreadPoolExecutor(max_workers=2) as pool:
        reads = [pool.submit(_read, job) for job in plan.jobs[:2]]
        saves = []
        for i, job in enumerate(plan.jobs):
            data, reason = reads[i].result()
            reads[i] = None
            if i + 2 < len(plan.jobs):
                reads.append(pool.submit(_read, plan.jobs[i + 2]))
            if reason is None:
                image, reason = _decode(data, alpha)
            if reason is None:
                try:
                    saves.append((job, pool.submit(_save, job, cartoonize(image))))
                except ValueError as err:
                    reason = str(err)
            if reason is not None:
                failed.append((job.source, reason))
                bar.write(f"failed {job.source}: {reason}", file=sys.stderr)
            bar.update(1)
        for job, future in saves:
            reason = future.result()
            if reason is None:
                done += 1
            else:
                failed.append((job.source, reason))
                bar.write(f"failed {job.source}: {reason}", file=sys.stderr)
    bar.close()
    for job in videos:
        try:
            if video is None:
                raise VideoError("videos are not supported here")
            video(job.source, job.target, progress)
            done += 1
        except VideoError as err:
            failed.append((job.source, str(err)))
            tqdm.write(f"failed {job.source}: {err}", file=sys.stderr)
    seconds = time.perf_counter() - start
    summary = dict(done=done, skipped=len(plan.skipped), failed=len(failed),
                   seconds=round(seconds, 2))
    tqdm.write(f"done {done}, skipped {summary['skipped']}, failed {summary['failed']} "
               f"in {seconds:.1f} s", file=sys.stderr)
    return summary
