"""Cartoonizing every image a Beam filesystem glob matches, with Apache Beam's RunInference.

One pipeline, unchanged on the DirectRunner, Dataflow, Flink or Spark:

    MatchFiles -> Plan -> GroupByKey -> Claim -> ReadMatches -> Decode -> RunInference
    -> Encode -> Write,   failures -> Failures -> PREFIX/failed-*.jsonl

Each image gets exactly cartoonize.py's treatment: image_io.decode_bgr (BGR uint8, the same
pixel limit), inference.Cartoonizer (same short-side cap, crop, generator and guided filter),
image_io.encode by the output's extension. Output names follow batch's rule (the input's path
relative to the pattern's folder, under PREFIX; the format's extension; grey-only formats as
.ppm). Outputs are written through Beam's FileSystems to a hidden temporary name beside the
target, then renamed. An input that fails (unreadable, not decodable, too small, too large, its
output not writable, two inputs wanting one output, an output that would replace an input) is
one JSON line {"path", "reason"} in PREFIX/failed-*.jsonl (one file, replaced by every run)
and never stops the others. Existing
outputs are skipped unless `overwrite`. The counts done / skipped / failed are Beam counters in
the namespace NAMESPACE.
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

from whitebox.base.errors import WeightsError
from whitebox.base.files import private_tempdir, temporary_name
from whitebox.base.image_io import (
    IMAGE_EXTENSIONS,
    PIXEL_LIMIT_ENV,
    ImageError,
    decode_bgr,
    encode,
)
from whitebox.infer.batch import target_name
from whitebox.infer.options import InferenceOptions
from whitebox.infer.video import is_video

NAMESPACE = "whitebox"
COUNTS = ("done", "skipped", "failed")
FAILED_NAME = "failed"
FAILED_SUFFIX = ".jsonl"
DEFAULT_BATCH = 4
_GLOB_CHARS = "*?["
_FAILED = "failed"
# WriteToText's temporary folder for PREFIX/failed-*.jsonl: "beam-temp-failed-" + uuid1 hex.
_SINK_TEMP = re.compile(rf"beam-temp-{FAILED_NAME}-[0-9a-f]{{32}}")


@dataclass(frozen=True)
class Settings:
    """What every worker needs: the output PREFIX, the pattern's folder (`base`, ending with a
    separator), the InferenceOptions and the rest of cartoonize.py's options."""
    prefix: str
    base: str
    options: InferenceOptions = InferenceOptions()
    weights: Optional[str] = None
    offline: bool = False
    fmt: str = "same"
    overwrite: bool = False
    batch_size: int = DEFAULT_BATCH


def is_remote(path):
    """Whether `path` names a Beam filesystem other than the local one (gs://, s3://, ...)."""
    return "://" in path


def absolute(path):
    """A local path made absolute (keeping a trailing separator); remote paths unchanged."""
    if is_remote(path):
        return path
    trailing = path.endswith(os.sep)
    path = os.path.abspath(os.path.expanduser(path))
    return path + os.sep if trailing and not path.endswith(os.sep) else path


def has_wildcard(pattern):
    """Whether `pattern` is a glob: it holds '*', '?' or a closed '[...]' set (an unclosed '['
    is an ordinary character, as for fnmatch)."""
    return "*" in pattern or "?" in pattern or re.search(r"\[!?.[^]]*]", pattern) is not None


def pattern_base(pattern):
    """The folder part of a glob before its first wildcard, ending with a separator: every
    match of `pattern` starts with it, and the rest is the match's path under PREFIX."""
    cut = min((pattern.find(c) for c in _GLOB_CHARS if c in pattern), default=len(pattern))
    head = pattern[:cut]
    separator = "/" if is_remote(pattern) else os.sep
    return head[:head.rfind(separator) + 1]


def _output_folder(prefix):
    """PREFIX ending with one separator."""
    separator = "/" if is_remote(prefix) else os.sep
    return prefix if prefix.endswith(separator) else prefix + separator


def plan_target(path, settings):
    """(target, None) for an image to cartoonize, (None, reason) for a file to skip, (None,
    None) for a file to ignore: hidden (a name or folder starting with '.') or inside PREFIX
    when PREFIX lies below the pattern's folder (the pipeline's own outputs)."""
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
    separator = "/" if is_remote(settings.prefix) else os.sep
    return output_folder + separator.join(name.parts), None


def claim_key(path):
    """The name under which Claim compares inputs and outputs: a local path with its symbolic
    links resolved (an output folder that links to the input folder names the inputs
    themselves); a remote path unchanged."""
    return path if is_remote(path) else os.path.realpath(path)


def failure(path, reason):
    """The dead-letter record of one input."""
    return {"path": path, "reason": reason}


class Plan(beam.DoFn):
    """FileMetadata -> (key, (kind, metadata)) for the claim: the input under its own path
    ("input") and under its target ("output"). Skipped files are only counted."""

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
    """(claim_key, [(kind, metadata)]) -> the FileMetadata of the one input that writes there.

    An output that is also an input's path fails; of several inputs wanting one output the
    first by path wins and the others fail; an existing output is skipped unless overwrite."""

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
                yield beam.pvalue.TaggedOutput(
                    _FAILED, failure(m.path, f"output {target} would overwrite an input"))
            return
        first, *others = claimants
        for m in others:
            yield beam.pvalue.TaggedOutput(
                _FAILED, failure(m.path, f"output {target} is already the output of {first.path}"))
        if not self.settings.overwrite and FileSystems.exists(target):
            self.skipped.inc()
            return
        yield first


class Decode(beam.DoFn):
    """ReadableFile -> ((source, target), HxWx3 uint8 BGR) by image_io.decode_bgr; failures to
    the tagged output."""

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
            yield beam.pvalue.TaggedOutput(_FAILED, failure(source, f"unreadable ({err})"))
            return
        try:
            if not data:
                raise ImageError("empty file (0 bytes)")
            yield (source, target), decode_bgr(data, self.settings.options.alpha)
        except ImageError as err:
            yield beam.pvalue.TaggedOutput(_FAILED, failure(source, str(err)))


def stage_weights(requested):
    """`requested` as load_generator_weights takes it: a local path unchanged; a remote
    checkpoint folder (gs://.../saved_models) or prefix (gs://.../model-33999) copied through
    FileSystems into a local temporary folder first. None stays None. Raises WeightsError
    when there are no files there."""
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
    """RunInference's model: HxWx3 uint8 BGR images in, their cartoons (uint8 BGR) out, or a
    one-line reason (str) for an image the network refuses (too small).

    The model is loaded once per worker process. A batch from BatchElements may mix sizes:
    images of one size go through Cartoonizer.cartoonize_batch together."""

    def __init__(self, settings):
        super().__init__(max_batch_size=settings.batch_size)
        self.settings = settings

    def load_model(self):
        from whitebox.base.quiet_tf import import_tensorflow

        import_tensorflow()
        from whitebox.infer.runtimes import load_cartoonizer

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
            return [" ".join(str(err).split())]
    return [_cartoonize_group(cartoonizer, [image])[0] for image in images]


class Encode(beam.DoFn):
    """((source, target), PredictionResult) -> ((source, target), bytes in the target's format);
    the network's refusals and encoding failures to the tagged output."""

    def process(self, element):
        (source, target), result = element
        if isinstance(result.inference, str):
            yield beam.pvalue.TaggedOutput(_FAILED, failure(source, result.inference))
            return
        try:
            ext = posixpath.splitext(target)[1].lower() or ".png"
            yield (source, target), encode(result.inference, ext)
        except ImageError as err:
            yield beam.pvalue.TaggedOutput(_FAILED, failure(source, str(err)))


def write_via_temporary(target, data):
    """Write `data` to a hidden temporary name beside `target` (files.temporary_name, as
    cartoonize.py's) through FileSystems, then rename it to `target`; the temporary is removed
    when anything fails."""
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
    """((source, target), bytes) -> writes the output; counts it done, or the failure."""

    def __init__(self):
        self.done = Metrics.counter(NAMESPACE, "done")

    def process(self, element):
        (source, target), data = element
        try:
            write_via_temporary(target, data)
        except Exception as err:  # any filesystem's error: this output fails, the run goes on
            yield beam.pvalue.TaggedOutput(
                _FAILED, failure(source, f"cannot write {target}: {' '.join(str(err).split())}"))
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
               | "Claim" >> beam.ParDo(Claim(settings)).with_outputs(_FAILED, main="files"))
    decoded = (claimed.files
               | "ReadMatches" >> fileio.ReadMatches()
               | "Decode" >> beam.ParDo(Decode(settings)).with_outputs(_FAILED, main="images"))
    encoded = (decoded.images
               | "RunInference" >> RunInference(KeyedModelHandler(CartoonizerHandler(settings)))
               | "Encode" >> beam.ParDo(Encode()).with_outputs(_FAILED, main="files"))
    written = encoded.files | "Write" >> beam.ParDo(Write()).with_outputs(_FAILED, main="none")
    failed = [claimed[_FAILED], decoded[_FAILED], encoded[_FAILED], written[_FAILED]]
    return (failed
            | "CollectFailures" >> beam.Flatten()
            | "Failures" >> beam.ParDo(Failures())
            | "WriteFailures" >> beam.io.WriteToText(
                FileSystems.join(settings.prefix, FAILED_NAME), file_name_suffix=FAILED_SUFFIX,
                num_shards=1))


def counts(result):
    """{'done', 'skipped', 'failed': int} from a finished pipeline's counters (committed values
    where the runner has them, else attempted)."""
    totals = dict.fromkeys(COUNTS, 0)
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for counter in query["counters"]:
        name = counter.key.metric.name
        if name in totals:
            value = counter.committed if counter.committed is not None else counter.attempted
            totals[name] += value or 0
    return totals


def remove_stale_sink_folders(prefix):
    """Delete the temporary folders (PREFIX/beam-temp-failed-<32 hex>/) that WriteToText of a
    killed run left in PREFIX; nothing else there is touched. Returns the removed paths (for a
    remote PREFIX, the objects in them)."""
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
    """Run the pipeline to the end, after removing what a killed run left in PREFIX
    (`remove_stale_sink_folders`); returns `counts`. Its temporary files, and its worker
    processes' (they inherit TMPDIR), go to this process's `files.private_tempdir`: Beam and
    its workers leave empty folders in TMPDIR otherwise."""
    remove_stale_sink_folders(settings.prefix)
    private_tempdir()
    with beam.Pipeline(options=pipeline_options) as pipeline:
        build(pipeline, pattern, settings)
    return counts(pipeline.result)
