"""cartoonize.py's job: which output each input gets (`plan_jobs`), then read -> cartoonize ->
write for every file, one failure never stopping the others (`run_plan`).
"""
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from whitebox.base.errors import Interrupted as Stopped
from whitebox.base.errors import display_path
from whitebox.base.files import remove_stale_temporaries, write_bytes_atomic
from whitebox.base.image_io import (
    IMAGE_EXTENSIONS,
    ImageError,
    decode_bgr,
    encode,
    list_files,
    read_file,
)
from whitebox.infer.options import VIDEO_BATCH
from whitebox.infer.video import VIDEO_EXTENSIONS, VideoError, is_video

FORMATS = {"png": ".png", "jpg": ".jpg"}
# Grey-only formats -> the extension of their colour cartoon under --format same.
GREY_ONLY = {".pgm": ".ppm", ".pbm": ".ppm"}
OVERWRITES_INPUT = "would overwrite an input"


class Interrupted(Stopped):
    """Ctrl-C stopped `run_plan` after it said the summary so far; args[0] is that summary."""
    reported = True


@dataclass
class Job:
    """An input, its planned output, and a line to print when written ('': none)."""
    source: Path
    target: Path
    note: str = ""


@dataclass
class Plan:
    """Jobs to run, plus inputs already settled: (path, reason) lists."""
    jobs: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def target_name(relative, fmt):
    """(output path relative to the output folder, why its format differs from the input's
    under 'same', else ''): the name with `fmt`'s extension, or GREY_ONLY's; videos keep
    theirs."""
    if is_video(relative):
        return relative, ""
    if fmt != "same":
        return relative.with_suffix(FORMATS[fmt]), ""
    colour = GREY_ONLY.get(relative.suffix.lower())
    if colour is None:
        return relative, ""
    return relative.with_suffix(colour), f"{relative.suffix} holds only grey, the cartoon is colour"


def _folder_files(folder, recursive, exclude):
    """([(file, path relative to folder)] of the visible images and videos, the same of the
    other visible files), in image_io's order. ImageError for an unreadable folder."""
    images, others = [], []
    for path in list_files(folder, recursive, exclude):
        known = path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
        (images if known else others).append((path, path.relative_to(folder)))
    return images, others


def plan_jobs(inputs, output_dir, fmt="same", recursive=False, overwrite=False, keep=()):
    """Decide the output of every input; nothing is read or written here.

    inputs: files (taken whatever their extension) or folders (their visible image and video
    files by extension; with `recursive` the whole tree, mirrored under output_dir).
    Refused: outputs that would overwrite an input or a file of `keep` (compared resolved),
    two inputs with one output, unreadable folders. Skipped: existing outputs unless
    `overwrite`, folder files of other extensions.
    """
    output_dir = Path(output_dir)
    out_resolved = output_dir.resolve()
    plan, claimed = Plan(), {}
    candidates = []
    for item in map(Path, inputs):
        if item.is_dir():
            try:
                images, others = _folder_files(item, recursive, out_resolved)
            except ImageError as err:
                plan.failed.append((item, str(err)))
                continue
            candidates += images
            plan.skipped += [(p, "not an image file extension") for p, _ in others]
        elif item.exists():
            candidates.append((item, Path(item.name)))
        else:
            plan.failed.append((item, "no such file or folder"))
    sources = {p.resolve() for p, _ in candidates} | {Path(p).resolve() for p in keep}
    for source, relative in candidates:
        name, why = target_name(relative, fmt)
        target = output_dir / name
        resolved = target.resolve()
        shown = display_path(target)
        if resolved in sources:
            plan.failed.append((source, f"output {shown} {OVERWRITES_INPUT}"))
        elif resolved in claimed:
            plan.failed.append((source, f"output {shown} is already the output of "
                                        f"{display_path(claimed[resolved])}"))
        elif target.exists() and not overwrite:
            claimed[resolved] = source
            plan.skipped.append((source, f"output {shown} exists (use --overwrite)"))
        else:
            claimed[resolved] = source
            plan.jobs.append(Job(source, target, f"written as {shown} ({why})" if why else ""))
    return plan


def _read(job):
    """A job's input bytes; returns (bytes, None) or (None, reason)."""
    try:
        return read_file(job.source), None
    except ImageError as err:
        return None, str(err)


def _convert(data, alpha, cartoonize, target):
    """(output bytes for `target`, None) or (None, reason). In the calling thread: decoding and
    encoding silence fd 2 for a moment, which in a worker could swallow lines we print."""
    try:
        cartoon = cartoonize(decode_bgr(data, alpha))  # the decoded image is freed here
        return encode(cartoon, target.suffix.lower()), None
    except (ImageError, ValueError) as err:
        return None, str(err)


def _save(job, data):
    """Write a job's output bytes; returns None or the reason it failed."""
    try:
        write_bytes_atomic(job.target, data)
        return None
    except OSError as err:
        return f"cannot write {display_path(job.target)}: {err.strerror or err}"


class _Report:
    """A run's counts, and its lines through `say` (only the failures unless `verbose`)."""

    def __init__(self, plan, say, verbose=True):
        self.done, self.skipped, self.failed = 0, list(plan.skipped), []
        self.line, self.verbose = say, verbose
        for path, reason in self.skipped:
            self.note(f"skipped {display_path(path)}: {reason}")
        for path, reason in plan.failed:
            self.fail(path, reason)

    def note(self, text):
        if self.verbose:
            self.line(text)

    def fail(self, path, reason):
        self.failed.append((path, reason))
        self.line(f"failed {display_path(path)}: {reason}")

    def finish(self, job, reason):
        if reason is not None:
            self.fail(job.source, reason)
            return
        self.done += 1
        if job.note:
            self.note(f"{display_path(job.source)}: {job.note}")


def _run_images(jobs, cartoonize, alpha, report, bar):
    """Every image job, reading ahead and writing behind in two worker threads. On Ctrl-C the
    outputs being written are finished and counted before KeyboardInterrupt goes on."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        reads = [pool.submit(_read, job) for job in jobs[:2]]
        saves = []
        try:
            for i, job in enumerate(jobs):
                data, reason = reads[i].result()
                reads[i] = None
                if i + 2 < len(jobs):
                    reads.append(pool.submit(_read, jobs[i + 2]))
                if reason is None:
                    data, reason = _convert(data, alpha, cartoonize, job.target)
                if reason is None:
                    saves.append((job, pool.submit(_save, job, data)))
                else:
                    report.finish(job, reason)
                bar.update(1)
        finally:
            for future in reads:
                if future is not None:
                    future.cancel()
            for job, future in saves:
                report.finish(job, future.result())


def run_plan(plan, cartoonize, say, progress=True, alpha="ignore", video=None):
    """Run every job with `cartoonize` (uint8 BGR -> uint8 BGR); report and count.

    First removes the temporary files a killed run left in the output folders. Gives `say`
    one line per skipped or failed input ('skipped PATH: reason', 'failed PATH: reason') and a
    summary; with `progress` false, no progress bar and only the failures and the summary.
    `alpha` goes to image_io.decode_bgr. Videos go, after the images, to `video(source, target,
    progress)`, which raises VideoError (without it they fail). Returns the counts: done,
    skipped, failed, seconds. Ctrl-C: the outputs being written are completed, a line says how
    many inputs were left, the summary follows, and Interrupted is raised.
    """
    start = time.perf_counter()
    images = [job for job in plan.jobs if not is_video(job.source)]
    videos = [job for job in plan.jobs if is_video(job.source)]
    report = _Report(plan, say, verbose=progress)
    for folder in sorted({job.target.parent for job in plan.jobs}):
        for path in remove_stale_temporaries(folder, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS):
            report.note(f"removed {display_path(path)}: a temporary file left by an "
                        f"interrupted run")
    bar = tqdm(total=len(images), unit="img", disable=not progress or not images,
               dynamic_ncols=True)
    interrupted = False
    try:
        _run_images(images, cartoonize, alpha, report, bar)
        bar.close()
        for job in videos:
            try:
                if video is None:
                    raise VideoError("videos are not supported here")
                video(job.source, job.target, progress)
                report.finish(job, None)
            except VideoError as err:
                report.finish(job, str(err))
    except KeyboardInterrupt:
        interrupted = True
    bar.close()
    seconds = time.perf_counter() - start
    if interrupted:
        left = len(plan.jobs) - report.done - (len(report.failed) - len(plan.failed))
        report.line(f"interrupted: {left} input(s) not processed")
    summary = dict(done=report.done, skipped=len(report.skipped), failed=len(report.failed),
                   seconds=round(seconds, 2))
    report.line(f"done {report.done}, skipped {summary['skipped']}, failed {summary['failed']} "
                f"in {seconds:.1f} s")
    if interrupted:
        raise Interrupted(summary)
    return summary


def video_runner(cartoonizer, batch_size=VIDEO_BATCH):
    """`run_plan`'s `video`: `batch_size` frames per network call, a bar in frames."""
    from whitebox.infer.video import cartoonize_video, frame_count

    def run(source, target, progress):
        with tqdm(total=frame_count(source), unit="frame", desc=Path(source).name,
                  disable=not progress, dynamic_ncols=True) as bar:
            cartoonize_video(source, target, cartoonizer.cartoonize_batch, batch_size,
                             progress=bar.update)
    return run
