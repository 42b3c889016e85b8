"""Structure representation: the superpixel step of the training loop (REFERENCE.md section 7).

A generator output (HxWx3 float32, BGR, roughly in [-1, 1]) becomes a piecewise constant image
with the reference's numbers (docs/SUPERPIXEL.md): :func:`slic_superpixel` (the reference code's
default) or :func:`~whitebox.model.selective_search.selective_adacolor` (the paper's), over a
batch in joblib's reusable process pool.  No TensorFlow here: the workers need only NumPy, SciPy
and scikit-image.
"""

from __future__ import annotations

import os

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from joblib.externals.loky import BrokenProcessPool, get_reusable_executor
from skimage.segmentation import slic

from whitebox.model import SUPERPIXEL_METHODS
from whitebox.model.regions import Regions, as_image, compact
from whitebox.model.selective_search import selective_adacolor

_pool_owner = None  # the process that last used the pool; a forked child cannot use it


def slic_superpixel(image, seg_num: int = 200) -> np.ndarray:
    """SLIC superpixels painted with their mean colour (the reference's default variant).

    HxWx3 float32 (BGR, roughly [-1, 1], not clipped) -> HxWx3 float32.  Segments numbered from 0
    as the reference's scikit-image did; its ``label2rgb(kind='mix')`` meant 'avg' (no background
    label): the mean, with the same float32 arithmetic.
    """
    img = as_image(image)
    labels, n = compact(slic(img, n_segments=seg_num, sigma=1, compactness=10, convert2lab=True, start_label=0))
    return Regions(labels, n).means(img.reshape(-1, 3))[labels].reshape(img.shape)


def _one_image(image, method, options):
    return (slic_superpixel if method == "slic" else selective_adacolor)(image, **options)


def _in_pool(workers: int, tasks) -> list:
    """Results of joblib ``delayed`` tasks, in order, from loky's reusable pool of ``workers``
    one-thread processes, every task (one image) queued at once and sent, not memory-mapped."""
    global _pool_owner
    _pool_owner = os.getpid()
    with parallel_config(backend="loky", inner_max_num_threads=1):
        return Parallel(n_jobs=workers, batch_size=1, pre_dispatch="all", max_nbytes=None)(tasks)


def shutdown_pool() -> None:
    """Stop the worker processes of :func:`superpixel_batch` (a later call starts new ones)."""
    if _pool_owner == os.getpid():
        get_reusable_executor(reuse=True).shutdown(wait=True)


def superpixel_batch(batch, method: str = "slic", n_jobs: int | None = None, **options) -> np.ndarray:
    """:func:`slic_superpixel` or (``method='selective'``) :func:`selective_adacolor` with
    ``options`` of every image of an NxHxWx3 float32 batch, as NxHxWx3 float32.

    ``n_jobs``: worker processes by joblib's rules (``None``: one per usable CPU; 1: serial),
    started on the first call and kept (docs/SUPERPIXEL.md).  The output does not depend on it.
    """
    if method not in SUPERPIXEL_METHODS:
        raise ValueError(f"method must be one of {SUPERPIXEL_METHODS}, got {method!r}")
    arr = np.ascontiguousarray(batch, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected an NxHxWx3 batch, got shape {arr.shape}")
    workers = effective_n_jobs(-1 if n_jobs is None else n_jobs)  # joblib's rules, loky's CPUs
    if workers == 1 or len(arr) <= 1 or _pool_owner not in (None, os.getpid()):
        results = [_one_image(image, method, options) for image in arr]
    else:
        tasks = [delayed(_one_image)(image, method, options) for image in arr]
        try:
            results = _in_pool(workers, tasks)
        except BrokenProcessPool:  # a worker died during the call: the pool is replaced; once more
            results = _in_pool(workers, tasks)
    out = np.empty_like(arr)
    for k, result in enumerate(results):
        out[k] = result
    return out
