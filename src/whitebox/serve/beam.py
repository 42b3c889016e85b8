"""Cartoonizing every image a Beam filesystem glob matches, with Apache Beam's RunInference
(docs/SCALE.md, "Millions of photos"):

    MatchFiles -> Plan -> GroupByKey -> Claim -> ReadMatches -> Decode -> RunInference
    -> Encode -> Write,   failures -> Failures -> PREFIX/failed-*.jsonl

Each image gets cartoonize.py's treatment (image_io.decode_bgr, inference.Cartoonizer,
image_io.encode) and batch's output name, under PREFIX. An input that fails is one JSON line
{"path", "reason"} in PREFIX/failed-*.jsonl (replaced by every run) and never stops the
others. The counts (COUNTS) are Beam counters in the namespace NAMESPACE.
"""
import json
import logging
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Optional

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)

from whitebox.base.errors import WeightsError, one_line
from whitebox.base.files import private_tempdir, temporary_name
from whitebox.base.image_io import (
    IMAGE_EXTENSIONS,
    PIXEL_LIMIT_ENV,
    ImageError,
    decode_bgr,
    encode,
)
from whitebox.infer.batch import target_name
from whitebox.infer.options import BEAM_BATCH, InferenceOptions
from whitebox.infer.video import is_video

NAMESPACE = "whitebox"
COUNTS = ("done", "skipped", "failed")
FAILED_NAME = "failed"  # the failures' tagged output and file name
FAILED_SUFFIX = ".jsonl"
# WriteToText's temporary folder for PREFIX/failed-*.jsonl: "beam-temp-failed-" + uuid1 hex.
_SINK_TEMP = re.compile(rf"beam-temp-{FAILED_NAME}-[0-9a-f]{{32}}")


@dataclass(frozen=True)
class Settings:
    """What every worker needs: the output PREFIX, the pattern's folder (`base`, ending with a
    separator), and cartoonize.py's options."""
    prefix: str
    base: str
    options: InferenceOptions = InferenceOptions()
    weights: Optional[str] = None
    offline: bool = False
    fmt: str = "same"
    overwrite: bool = False
    batch_size: int = BEAM_BATCH


def is_remote(path):
    """Whether `path` is on a remote Beam filesystem (gs://, s3://, ...)."""
    return "://" in path


def _separator(path):
    return "/" if is_remote(path) else os.sep


def absolute(path):
    """A local path made absolute (keeping a trailing separator); remote paths unchanged."""
    if is_remote(path):
        return path
    trailing = path.endswith(os.sep)
    path = os.path.abspath(os.path.expanduser(path))
    return path + os.sep if trailing and not path.endswith(os.sep) else path


def has_wildcard(pattern):
    """Whether `pattern` holds '*', '?' or a closed '[...]' set (as for fnmatch)."""
    return "*" in pattern or "?" in pattern or re.search(r"\[!?.[^]]*]", pattern) is not None


def pattern_base(pattern):
    """The folder part of a glob before its first wildcard, ending with a separator: the rest
    of a match is its path under PREFIX."""
    cut = min((pattern.find(c) for c in "*?[" if c in pattern), default=len(pattern))
    head = pattern[:cut]
    return head[:head.rfind(_separator(pattern)) + 1]


def _output_folder(prefix):
    """PREFIX ending with one separator."""
    return prefix if prefix.endswith(_separator(prefix)) else prefix + _separator(prefix)


def plan_target(path, settings):
    """(target, None) for an image, (None, reason) for a file to skip, (None, None) for one to
    ignore: hidden, or inside PREFIX below the pattern's folder (our own outputs)."""
    output_folder = _output_folder(settings.prefix)
    if len(output_folder) > len(settings.base) and path.startswith(output_folder):
        return None, None
    relative = PurePosixPath(path[len(settings.base):].replace(os.sep, "/"))
    if any(part.startswith(".") for part in relative.parts):
        return None, None
    if is_video(relative):
        return None, "videos are handled by cartoonize.py, not by the pipeline"
    if relative.suffix.lower() not in IMAGE_EXTENSIONS:
        return None, "not an image file extension"
    name, _ = target_name(relative, settings.fmt)
    return output_folder + _separator(settings.prefix).join(name.parts), None


def claim_key(path):
    """The name under which Claim compares inputs and outputs: a local path resolved through
    links, a remote one unchanged."""
    return path if is_remote(path) else os.path.realpath(path)


def failure(path, reason):
    """One input's dead-letter record, to the tagged output."""
    return beam.pvalue.TaggedOutput(FAILED_NAME, {"path": path, "reason": reason})


class Plan(beam.DoFn):
    """FileMetadata -> (claim_key, (kind, metadata)): the input under its own path ("input")
    and under its target ("output"). Skipped files are only counted."""

    def __init__(self, settings):
        self.settings = settings
        self.skipped = Metrics.counter(NAMESPACE, "skipped")

    def process(self, metadata):
        target, reason = plan_target(metadata.path, self.settings)
        if reason is not None:
            logging.info("skipped %s: %s", metadata.path, reason)
            self.skipped.inc()
        if target is None:
            return
        yield claim_key(metadata.path), ("input", None)
        yield claim_key(target), ("output", metadata)


class Claim(beam.DoFn):
    """(claim_key, [(kind, metadata)]) -> the FileMetadata of the one input that writes there:
    none when it is an input's path; the first by path of several; none when it exists,
    unless overwrite. The others fail."""

    def __init__(self, settings):
        self.settings = settings
        self.skipped = Metrics.counter(NAMESPACE, "skipped")

    def process(self, element):
        target, entries = element
        claimants = sorted((m for kind, m in entries if kind == "output"), key=lambda m: m.path)
        if not claimants:
            return
        if any(kind == "input" for kind, _ in entries):
            for m in claimants:
                yield failure(m.path, f"output {target} would overwrite an input")
            return
        first, *others = claimants
        for m in others:
            yield failure(m.path, f"output {target} is already the output of {first.path}")
        if not self.settings.overwrite and FileSystems.exists(target):
            self.skipped.inc()
            return
        yield first


class Decode(beam.DoFn):
    """ReadableFile -> ((source, target), HxWx3 uint8 BGR) by image_io.decode_bgr."""

    def __init__(self, settings):
        self.settings = settings

    def setup(self):
        if self.settings.options.max_pixels is not None:  # a worker of its own, maybe remote
            os.environ[PIXEL_LIMIT_ENV] = str(self.settings.options.max_pixels)

    def process(self, readable):
        source = readable.metadata.path
        target, _ = plan_target(source, self.settings)
        try:
            data = readable.read()
        except Exception as err:  # any filesystem's error: this input fails, the run goes on
            yield failure(source, f"unreadable ({err})")
            return
        try:
            if not data:
                raise ImageError("empty file (0 bytes)")
            yield (source, target), decode_bgr(data, self.settings.options.alpha)
        except ImageError as err:
            yield failure(source, str(err))


def stage_weights(requested):
    """`requested` as a local path: a remote checkpoint folder (gs://.../saved_models) or prefix
    (gs://.../model-33999) copied through FileSystems into a temporary folder; local paths and
    None unchanged. Raises WeightsError when there are no files there."""
    if not requested or not is_remote(requested):
        return requested
    stripped = requested.rstrip("/")
    for pattern, as_folder in ((stripped + "/*", True), (stripped + ".*", False)):
        files = FileSystems.match([pattern])[0].metadata_list
        if files:
            break
    else:
        raise WeightsError(f"{requested}: no checkpoint files there")
    folder = tempfile.mkdtemp(prefix="whitebox-weights-")
    for metadata in files:
        name = posixpath.basename(metadata.path)
        with FileSystems.open(metadata.path, compression_type=CompressionTypes.UNCOMPRESSED) \
                as src, open(os.path.join(folder, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
    return folder if as_folder else os.path.join(folder, posixpath.basename(stripped))


class CartoonizerHandler(ModelHandler):
    """RunInference's model, loaded once per worker: HxWx3 uint8 BGR images -> their cartoons,
    or a one-line reason (str) for an image the network refuses. A batch may mix sizes: each
    size goes through Cartoonizer.cartoonize_batch together."""

    def __init__(self, settings):
        super().__init__(max_batch_size=settings.batch_size)
        self.settings = settings

    def load_model(self):
        from whitebox.base.quiet_tf import import_tensorflow

        import_tensorflow()
        from whitebox.infer.loader import load_cartoonizer

        return load_cartoonizer(stage_weights(self.settings.weights), self.settings.options,
                                self.settings.offline, logging.warning, progress=False)

    def run_inference(self, batch, model, inference_args=None):
        outputs = [None] * len(batch)
        groups = {}
        for i, image in enumerate(batch):
            groups.setdefault(image.shape, []).append(i)
        for indices in groups.values():
            for i, out in zip(indices, _cartoonize_group(model, [batch[i] for i in indices])):
                outputs[i] = out
        return [PredictionResult(image, out) for image, out in zip(batch, outputs)]

    def get_num_bytes(self, batch):
        return sum(image.nbytes for image in batch)

    def get_metrics_namespace(self):
        return NAMESPACE


def _cartoonize_group(cartoonizer, images):
    """Cartoons (or reasons) for same-size images: one batch call, image by image if it fails."""
    import tensorflow as tf

    try:
        return cartoonizer.cartoonize_batch(images)
    except (ValueError, tf.errors.OpError) as err:
        if len(images) == 1:
            return [one_line(err, "all")]
    return [_cartoonize_group(cartoonizer, [image])[0] for image in images]


class Encode(beam.DoFn):
    """((source, target), PredictionResult) -> ((source, target), bytes in target's format)."""

    def process(self, element):
        (source, target), result = element
        if isinstance(result.inference, str):
            yield failure(source, result.inference)
            return
        try:
            ext = posixpath.splitext(target)[1].lower() or ".png"
            yield (source, target), encode(result.inference, ext)
        except ImageError as err:
            yield failure(source, str(err))


def write_via_temporary(target, data):
    """Write `data` through FileSystems to files.temporary_name beside `target`, then rename it
    (removed when anything fails): files.atomic_file's pattern on any Beam filesystem."""
    folder, name = FileSystems.split(target)
    temporary = FileSystems.join(folder, temporary_name(name))
    try:
        with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data)
        FileSystems.rename([temporary], [target])
    except BaseException:
        try:
            if FileSystems.exists(temporary):
                FileSystems.delete([temporary])
        except Exception:  # the original error matters more than a failed clean-up
            pass
        raise


class Write(beam.DoFn):
    """((source, target), bytes) -> the output written and counted done."""

    def __init__(self):
        self.done = Metrics.counter(NAMESPACE, "done")

    def process(self, element):
        (source, target), data = element
        try:
            write_via_temporary(target, data)
        except Exception as err:  # any filesystem's error: this output fails, the run goes on
            yield failure(source, f"cannot write {target}: {one_line(err, 'all')}")
            return
        self.done.inc()


class Failures(beam.DoFn):
    """A failure record -> its JSON line, counted."""

    def __init__(self):
        self.failed = Metrics.counter(NAMESPACE, "failed")

    def process(self, record):
        self.failed.inc()
        logging.warning("failed %s: %s", record["path"], record["reason"])
        yield json.dumps(record)


def build(pipeline, pattern, settings):
    """Add the cartoonizing transforms for the files `pattern` matches to `pipeline`."""
    claimed = (pipeline
               | "MatchFiles" >> fileio.MatchFiles(
                   pattern, empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
               | "Plan" >> beam.ParDo(Plan(settings))
               | "GroupByKey" >> beam.GroupByKey()
               | "Claim" >> beam.ParDo(Claim(settings)).with_outputs(FAILED_NAME, main="files"))
    decoded = (claimed.files
               | "ReadMatches" >> fileio.ReadMatches()
               | "Decode" >> beam.ParDo(Decode(settings)).with_outputs(FAILED_NAME, main="images"))
    encoded = (decoded.images
               | "RunInference" >> RunInference(KeyedModelHandler(CartoonizerHandler(settings)))
               | "Encode" >> beam.ParDo(Encode()).with_outputs(FAILED_NAME, main="files"))
    written = encoded.files | "Write" >> beam.ParDo(Write()).with_outputs(FAILED_NAME, main="none")
    return ([step[FAILED_NAME] for step in (claimed, decoded, encoded, written)]
            | "CollectFailures" >> beam.Flatten()
            | "Failures" >> beam.ParDo(Failures())
            | "WriteFailures" >> beam.io.WriteToText(
                FileSystems.join(settings.prefix, FAILED_NAME), file_name_suffix=FAILED_SUFFIX,
                num_shards=1))


def counts(result):
    """{COUNTS: int} from a finished pipeline's counters (committed, else attempted)."""
    totals = dict.fromkeys(COUNTS, 0)
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for counter in query["counters"]:
        name = counter.key.metric.name
        if name in totals:
            value = counter.committed if counter.committed is not None else counter.attempted
            totals[name] += value or 0
    return totals


def remove_stale_sink_folders(prefix):
    """Delete the folders PREFIX/beam-temp-failed-<32 hex>/ that WriteToText of a killed run
    left, and nothing else. Returns the removed paths (remote: the objects in them)."""
    if not is_remote(prefix):
        folders = [entry for entry in os.scandir(prefix) if _SINK_TEMP.fullmatch(entry.name)
                   and entry.is_dir(follow_symlinks=False)] if os.path.isdir(prefix) else []
        for entry in folders:
            shutil.rmtree(entry.path, ignore_errors=True)
        return [entry.path for entry in folders]
    pattern = FileSystems.join(prefix, f"beam-temp-{FAILED_NAME}-*", "*")
    objects = [m.path for m in FileSystems.match([pattern])[0].metadata_list
               if _SINK_TEMP.fullmatch(posixpath.basename(posixpath.dirname(m.path)))]
    if objects:
        FileSystems.delete(objects)
    return objects


def run(pattern, settings, pipeline_options):
    """Run the pipeline to the end after `remove_stale_sink_folders`; returns `counts`. Its and
    its workers' temporary files go to `files.private_tempdir` (Beam leaves empty folders in
    TMPDIR otherwise)."""
    remove_stale_sink_folders(settings.prefix)
    private_tempdir()
    with beam.Pipeline(options=pipeline_options) as pipeline:
        build(pipeline, pattern, settings)
    return counts(pipeline.result)
