"""Training data: the four domain lists, the face/scenery schedule, batches through tf.data.

A list file `<domain>.txt` holds one image path per line, absolute or relative to its folder
('#' lines and blank ones ignored). Batches are drawn as the reference's `next_batch` does:
photos and cartoons sampled independently, without repeats, from the iteration's domain (face
when iteration % 5 == 0). A larger image than the patch gets a random crop (an extension). The
draws of iteration i depend only on (seed, i), so a resumed run sees the same batches.
"""
import os
from pathlib import Path

import numpy as np

from whitebox.base.errors import UsageError, display_path
from whitebox.base.files import write_text_atomic
from whitebox.base.image_io import (
    IMAGE_EXTENSIONS,
    ImageError,
    list_images,
    read_bgr,
    to_unit_range,
)

DOMAINS = ("photo_face", "photo_scenery", "cartoon_face", "cartoon_scenery")
LIST_SUFFIX = ".txt"
# Stream ids mixed into the per-iteration seed, so the batch and sample-grid draws differ.
_TRAIN_STREAM, _SAMPLE_STREAM = 0, 1


class DataError(UsageError):
    """Missing, empty, too small or unreadable training data; the message names the file."""


def list_path(list_dir, domain):
    return Path(list_dir) / f"{domain}{LIST_SUFFIX}"


def read_list(path):
    """Absolute image paths from a list file, in file order; DataError when the list is missing,
    empty, or names files that do not exist."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{display_path(path)}: no such list file")
    base = path.parent
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            entry = Path(line)
            entries.append(str(entry if entry.is_absolute() else (base / entry).resolve()))
    if not entries:
        raise DataError(f"{display_path(path)}: the list is empty")
    missing = [display_path(e) for e in entries if not os.path.isfile(e)]
    if missing:
        shown = "\n  ".join(missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(f"{display_path(path)}: {len(missing)} listed file(s) do not exist:\n"
                        f"  {shown}{more}")
    return entries


def make_lists(folders, out_dir, absolute=False):
    """Write a list file per domain of `folders` ({domain: folder}), paths relative to
    `out_dir` unless `absolute`; returns {domain: image count}. DataError for an empty folder."""
    counts = {}
    out_dir = Path(out_dir)
    for domain, folder in folders.items():
        if domain not in DOMAINS:
            raise DataError(f"unknown domain {domain!r}; domains are {', '.join(DOMAINS)}")
        try:
            images = list_images(folder)
        except ImageError as err:
            raise DataError(f"{display_path(folder)}: {err} (for {domain})") from None
        if not images:
            raise DataError(f"{display_path(folder)}: no image files "
                            f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
        out_dir.mkdir(parents=True, exist_ok=True)
        lines = [os.path.abspath(p) if absolute
                 else os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir))
                 for p in images]
        write_text_atomic(list_path(out_dir, domain), "\n".join(lines) + "\n")
        counts[domain] = len(images)
    return counts


def folders_under(root):
    """{domain: root/domain} for the domain folders that exist under `root` (the reference's
    `dataset/` layout)."""
    return {d: str(Path(root) / d) for d in DOMAINS if (Path(root) / d).is_dir()}


def load_lists(list_dir, with_cartoons):
    """(lists {domain: paths}, use_face, note): scenery required, face lists used when all are
    present (`note` says so when none is; a partial pair is an error)."""
    kinds = ("photo", "cartoon") if with_cartoons else ("photo",)
    lists = {f"{k}_scenery": read_list(list_path(list_dir, f"{k}_scenery")) for k in kinds}
    face = [f"{k}_face" for k in kinds]
    present = [d for d in face if list_path(list_dir, d).is_file()]
    note = ""
    if not present:
        names = ", ".join(f + LIST_SUFFIX for f in face)
        note = (f"no face lists in {display_path(list_dir)} ({names}): "
                "every iteration uses scenery")
    elif len(present) < len(face):
        absent = sorted(set(face) - set(present))
        raise DataError(f"{display_path(list_dir)}: {', '.join(present)} is present but "
                        f"{', '.join(absent)} is not; give both face lists or neither")
    for d in present:
        lists[d] = read_list(list_path(list_dir, d))
    return lists, bool(present), note


def read_image(path, patch_size, rng):
    """[patch, patch, 3] float32 BGR in [-1, 1] (image_io.read_bgr), a larger image cropped where
    `rng` says; DataError for a smaller or unreadable one."""
    try:
        image = read_bgr(path)
    except ImageError as err:
        raise DataError(f"{display_path(path)}: unreadable image ({err})") from None
    h, w = image.shape[:2]
    if h < patch_size or w < patch_size:
        raise DataError(f"{display_path(path)}: {w}x{h} is smaller than the "
                        f"{patch_size}x{patch_size} patch")
    if h > patch_size or w > patch_size:
        top = int(rng.integers(0, h - patch_size + 1))
        left = int(rng.integers(0, w - patch_size + 1))
        image = image[top:top + patch_size, left:left + patch_size]
    return to_unit_range(image)


class BatchSampler:
    """`batch(i)` -> (photos, cartoons or None) float32 [B, P, P, 3] BGR [-1, 1], from (seed, i)."""

    def __init__(self, lists, batch_size, patch_size, seed, use_face, with_cartoons,
                 face_every=5):
        self.lists = lists
        self.batch_size = batch_size
        self.patch_size = patch_size
        self.seed = seed
        self.use_face = use_face
        self.with_cartoons = with_cartoons
        self.face_every = face_every
        self.last_error = None
        for domain, paths in lists.items():
            if len(paths) < batch_size:
                raise DataError(f"{domain}: {len(paths)} image(s), fewer than the batch size "
                                f"{batch_size} (a batch has no repeats)")

    def domain(self, iteration):
        """The reference's schedule: face on every face_every-th iteration (0, 5, 10, ...)."""
        return "face" if self.use_face and iteration % self.face_every == 0 else "scenery"

    def _draw(self, paths, rng):
        picks = rng.choice(len(paths), size=self.batch_size, replace=False)
        return [paths[i] for i in picks]

    def paths(self, iteration, domain=None, stream=_TRAIN_STREAM):
        """(photo paths, cartoon paths or None); `domain` overrides the schedule."""
        domain = domain or self.domain(iteration)
        rng = np.random.default_rng([self.seed, stream, iteration])
        photos = self._draw(self.lists[f"photo_{domain}"], rng)
        cartoons = self._draw(self.lists[f"cartoon_{domain}"], rng) if self.with_cartoons else None
        return photos, cartoons

    def _read(self, paths, iteration, stream, kind):
        rng = np.random.default_rng([self.seed, stream, iteration, kind])
        return np.stack([read_image(p, self.patch_size, rng) for p in paths])

    def batch(self, iteration, domain=None, stream=_TRAIN_STREAM):
        photos, cartoons = self.paths(iteration, domain, stream)
        try:
            photo_batch = self._read(photos, iteration, stream, 0)
            cartoon_batch = (self._read(cartoons, iteration, stream, 1)
                             if cartoons is not None else None)
        except DataError as err:
            self.last_error = err
            raise
        return photo_batch, cartoon_batch

    def sample_batch(self, iteration, domain):
        """A batch for the sample grids, drawn from a stream apart from the training one."""
        return self.batch(iteration, domain, stream=_SAMPLE_STREAM)

    def dataset(self, start, stop):
        """tf.data.Dataset of (iteration, photos[, cartoons]) for iterations start..stop-1,
        decoded on the host several at once and prefetched, in iteration order."""
        import tensorflow as tf

        size = self.patch_size
        shape = [self.batch_size, size, size, 3]

        def load(i):
            photos, cartoons = self.batch(int(i))
            return (photos, cartoons) if self.with_cartoons else (photos,)

        n_out = 2 if self.with_cartoons else 1

        def fetch(i):
            arrays = tf.numpy_function(load, [i], [tf.float32] * n_out, stateful=False)
            for a in arrays:
                a.set_shape(shape)
            return (i, *arrays)

        ds = tf.data.Dataset.range(start, stop)
        ds = ds.map(fetch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)
