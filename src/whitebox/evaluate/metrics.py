"""Image sets as FID/KID see them: `FeatureSet` holds the features (or only their statistics)
of a folder or of an `.npz` statistics cache; `embed_folder`, `load_set`, `save_cache`,
`compare`. Features come from an extractor of `inception`, the math from `distances`.
"""
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from whitebox.base import notice
from whitebox.base.errors import display_path, one_line
from whitebox.base.files import atomic_file
from whitebox.base.image_io import ImageError, list_images, read_bgr
from whitebox.evaluate.distances import (
    MetricsError,
    feature_statistics,
    frechet_distance,
    kernel_inception_distance,
)
from whitebox.evaluate.inception import GRAPH_NAME

# The paper's Table (validation set: 1,978 photos, 3,011 animation images).
PAPER_VALUES = {"fid_to_cartoon": 101.31, "fid_to_photo": 28.79}
CACHE_FORMAT = 1
CACHE_FIELDS = ("mean", "cov", "count", "extractor", "sha256", "image_size")


@dataclass
class FeatureSet:
    """Features or statistics of one image set, with where they came from."""
    source: str
    kind: str                      # "folder" or "cache"
    count: int
    mean: np.ndarray
    cov: np.ndarray
    extractor: str
    sha256: str
    image_size: list
    features: np.ndarray = None    # N x D float32, or None for a cache saved without them
    skipped: list = field(default_factory=list)   # (path, reason)

    def describe(self):
        return dict(source=self.source, kind=self.kind, n=self.count,
                    skipped=len(self.skipped), has_features=self.features is not None)


def embed_paths(paths, extractor, progress=True, label="images", say=notice):
    """(N x D float32 features, [(path, reason) skipped]) of image files, each skipped one
    given to `say` as a line. Decoding stays in this thread: it silences fd 2 for a moment, which
    from a worker thread could swallow the lines printed here (the network sets the pace)."""
    paths = list(paths)
    chunks, skipped, pending = [], [], []
    bar = tqdm(total=len(paths), unit="img", desc=label, disable=not progress or not paths,
               dynamic_ncols=True, file=sys.stderr)

    def flush():
        if pending:
            chunks.append(np.asarray(extractor.embed(pending), np.float32))
            bar.update(len(pending))
            pending.clear()

    for path in paths:
        try:
            pending.append(read_bgr(path)[:, :, ::-1])
        except ImageError as err:
            skipped.append((str(path), str(err)))
            say(f"skipped {display_path(path)}: {err}")
            bar.update(1)
        if len(pending) >= extractor.batch_size:
            flush()
    flush()
    bar.close()
    dim = extractor.feature_dim or 0
    features = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return features, skipped


def features_to_set(features, extractor, source, kind="folder", skipped=()):
    """A FeatureSet from an N x D array computed with `extractor`."""
    if len(features) < 2:
        raise MetricsError(f"{source}: fewer than 2 usable images ({len(features)})")
    mean, cov = feature_statistics(features)
    return FeatureSet(source=str(source), kind=kind, count=len(features), mean=mean, cov=cov,
                      extractor=extractor.name, sha256=extractor.sha256,
                      image_size=list(extractor.image_size), features=features,
                      skipped=list(skipped))


def embed_folder(folder, extractor, recursive=False, progress=True, label=None, say=notice):
    """FeatureSet of `list_images(folder)`; `label` names the progress bar (default: the
    folder's name); `say` gets a line per skipped file."""
    try:
        paths = list_images(folder, recursive)
    except ImageError as err:
        raise MetricsError(f"{folder}: {err}") from None
    features, skipped = embed_paths(paths, extractor, progress,
                                    label=label or Path(folder).name or str(folder), say=say)
    return features_to_set(features, extractor, folder, "folder", skipped)


def save_cache(path, fset, keep_features=True):
    """Write a FeatureSet atomically as an .npz statistics cache (no pickled objects)."""
    path = Path(path)
    arrays = dict(format=np.int64(CACHE_FORMAT), mean=fset.mean, cov=fset.cov,
                  count=np.int64(fset.count), extractor=np.str_(fset.extractor),
                  sha256=np.str_(fset.sha256), image_size=np.asarray(fset.image_size, np.int64),
                  source=np.str_(fset.source), skipped=np.int64(len(fset.skipped)))
    if keep_features and fset.features is not None:
        arrays["features"] = np.asarray(fset.features, np.float32)
    try:
        with atomic_file(path) as (f, _):
            np.savez(f, **arrays)
    except OSError as err:
        reason = (f"{err.filename} is not a folder" if isinstance(err, FileExistsError)
                  else err.strerror or one_line(err))
        raise MetricsError(f"{path}: cannot write ({reason})")


def _cache_arrays(path):
    """{name: array} of the .npz at `path`, checked for what `save_cache` writes."""
    if not zipfile.is_zipfile(path):
        raise MetricsError(f"{path}: not an .npz statistics cache (not a zip archive, or "
                           f"truncated)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = sorted(set(CACHE_FIELDS) - set(data.files))
            if missing:
                raise MetricsError(f"{path}: not a statistics cache (missing "
                                   f"{', '.join(missing)})")
            arrays = {key: data[key] for key in data.files
                      if key in CACHE_FIELDS + ("features",)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise MetricsError(f"{path}: damaged statistics cache ({one_line(err)})")
    mean, cov, count, size = (arrays[key] for key in ("mean", "cov", "count", "image_size"))
    features = arrays.get("features")
    dim = mean.shape[0] if mean.ndim == 1 else -1
    problems = [
        (mean.ndim != 1 or mean.dtype.kind != "f", f"mean of shape {mean.shape}"),
        (cov.shape != (dim, dim) or cov.dtype.kind != "f",
         f"covariance of shape {cov.shape} for {dim} features"),
        (count.shape != () or count.dtype.kind not in "iu" or count < 2, f"count {count!r}"),
        (size.shape != (2,) or size.dtype.kind not in "iu", f"image_size {size!r}"),
        (any(arrays[key].shape != () or arrays[key].dtype.kind != "U"
             for key in ("extractor", "sha256")), "extractor or sha256 not a text"),
        (features is not None and (features.ndim != 2 or features.shape[1] != dim),
         f"features of shape {None if features is None else features.shape}"),
        (not np.isfinite(mean).all(), "mean has NaN or infinite values"),
        (not np.isfinite(cov).all(), "covariance has NaN or infinite values"),
        (features is not None and features.dtype.kind == "f"
         and not np.isfinite(features).all(), "features have NaN or infinite values"),
    ]
    for bad, what in problems:
        if bad:
            raise MetricsError(f"{path}: not a statistics cache ({what})")
    return arrays


def load_cache(path):
    """The FeatureSet of a `save_cache` file."""
    arrays = _cache_arrays(Path(path))
    return FeatureSet(source=str(path), kind="cache", count=int(arrays["count"]),
                      mean=arrays["mean"].astype(np.float64), cov=arrays["cov"].astype(np.float64),
                      extractor=str(arrays["extractor"]), sha256=str(arrays["sha256"]),
                      image_size=[int(v) for v in arrays["image_size"]],
                      features=arrays.get("features"))


def load_set(path, extractor_factory, recursive=False, progress=True, label=None, say=notice):
    """A folder (embedded with extractor_factory()) or a cache, as a FeatureSet; `say` gets a
    line per skipped file."""
    if Path(path).is_file() and str(path).lower().endswith(".npz"):
        return load_cache(path)
    if not Path(path).is_dir():
        raise MetricsError(f"{path}: neither a folder of images nor an .npz cache")
    return embed_folder(path, extractor_factory(), recursive, progress, label, say)


def check_compatible(a, b):
    """Refuse to compare sets embedded by different networks or at different sizes."""
    if (a.extractor, a.sha256) != (b.extractor, b.sha256):
        raise MetricsError(f"{a.source} ({a.extractor}, sha256 {a.sha256[:12]}...) and "
                           f"{b.source} ({b.extractor}, sha256 {b.sha256[:12]}...) were "
                           f"embedded by different networks")
    if list(a.image_size) != list(b.image_size) or a.mean.shape != b.mean.shape:
        raise MetricsError(f"{a.source} and {b.source}: different image or feature sizes")


def compare(a, b, kid=False, kid_subsets=100, kid_subset_size=1000, seed=0):
    """FID (and optionally KID) between two FeatureSets; a dict for the JSON report."""
    check_compatible(a, b)
    report = dict(fid=frechet_distance(a.mean, a.cov, b.mean, b.cov),
                  n_a=a.count, n_b=b.count)
    warnings = []
    if a.extractor == GRAPH_NAME and (a.mean.size != 2048 or list(a.image_size) != [299, 299]):
        warnings.append(f"{a.mean.size} features at {a.image_size[0]}x{a.image_size[1]}, not "
                        f"2048 at 299x299: this is not the 2015-12-05 Inception graph, so "
                        f"these numbers are not FID (a stand-in's smoke test at most)")
    if min(a.count, b.count) < a.mean.size:
        warnings.append(f"fewer images ({min(a.count, b.count)}) than feature dimensions "
                        f"({a.mean.size}): the covariance is singular and FID is strongly "
                        f"biased upwards; compare only at equal n, or use KID")
    if kid:
        missing = [s.source for s in (a, b) if s.features is None]
        if missing:
            raise MetricsError(f"KID needs features; cache saved without them: "
                               f"{', '.join(missing)}")
        report["kid"] = kernel_inception_distance(a.features, b.features, kid_subsets,
                                                  kid_subset_size, seed)
    return {**report, "warnings": warnings}
