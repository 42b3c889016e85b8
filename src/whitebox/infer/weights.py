"""Fetch the authors' pretrained generator on first use, verify it, and keep it in a user cache.

The official checkpoint is the three files of ``test_code/saved_models/`` in
SystemErrorWang/White-box-Cartoonization at one pinned commit. Each file is checked against its git
blob id at that commit (SHA-1 of ``b"blob <size>\\0" + content``), so anyone can compare the table
below with the repository tree (``git ls-tree <commit> test_code/saved_models/``).

The authors' ``checkpoint`` file also lists ``model-37499``, which they never published, so the
returned prefix must be restored explicitly; do not go through ``tf.train.latest_checkpoint``.

Environment variables:

* ``WHITEBOX_HOME``: root folder for this project's cache (`files.home_dir`). Weights live in
  ``<root>/weights/<WEIGHTS_SUBDIR>/``.
* ``WHITEBOX_WEIGHTS_URL``: base URL the file names are appended to (default: GitHub raw URLs
  at the pinned commit); ``http(s)://``, ``ftp://`` and ``file://``.
* ``WHITEBOX_OFFLINE=1``: never touch the network.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Mapping, Optional, Union

import pooch

from whitebox.base.errors import WeightsError
from whitebox.base.files import ENV_HOME, home_dir, staging_folder

AUTHORS_REPO = "SystemErrorWang/White-box-Cartoonization"
PINNED_COMMIT = "ee97277d7fd873b89e9b8e1341efe74e10dd4124"
REMOTE_FOLDER = "test_code/saved_models/"
CHECKPOINT_PREFIX = "model-33999"

# name -> git blob id at PINNED_COMMIT, in the order they are fetched (smallest first).
OFFICIAL_FILES: Mapping[str, str] = {
    "checkpoint": "99d1f471e36fa83f06d8d347df26ccbfb7cba8aa",
    "model-33999.index": "f1749e5542e83cf01a19aa1b2a3a7370a17efa41",
    "model-33999.data-00000-of-00001": "785cdcb8a0ab9bf44171c087878cc84863562eab",
}

DEFAULT_BASE_URL = (
    f"https://raw.githubusercontent.com/{AUTHORS_REPO}/{PINNED_COMMIT}/{REMOTE_FOLDER}"
)

ENV_WEIGHTS_URL = "WHITEBOX_WEIGHTS_URL"
ENV_OFFLINE = "WHITEBOX_OFFLINE"

# Sub-folder of <home>/weights/ holding this commit's files; a new pin gets a new folder.
WEIGHTS_SUBDIR = f"white-box-cartoonization-{PINNED_COMMIT[:12]}"

# Further attempts per file after a network failure (pooch waits 1 s, 2 s, ... between them).
RETRIES = 3

LICENCE_NOTICE = (
    "Note: the pretrained White-box Cartoonization weights are the work of Xinrui Wang and "
    f"Jinze Yu ({AUTHORS_REPO}).\n"
    "The authors release them under CC BY-NC-SA 4.0: non-commercial use only, with "
    "attribution, and adaptations shared under the same licence.\n"
    "See https://creativecommons.org/licenses/by-nc-sa/4.0/ . This project does not "
    "redistribute them; they are fetched from the authors' repository."
)


class WeightsUnavailable(WeightsError):
    """The weights are not in the cache and could not be downloaded. The message is for the end
    user: which files to place in which folder, and where to download them from."""


class WeightsVerificationError(WeightsUnavailable):
    """A file's git blob id differs from the pinned one. A download that fails is deleted; a
    file found in the cache (perhaps placed there by the user) is moved aside to
    ``NAME.rejected``, never deleted."""


def git_blob_id(source: Union[str, os.PathLike, bytes, bytearray, memoryview]) -> str:
    """Git's object id for a blob: SHA-1 of ``b"blob <size>\\0"`` followed by the content.
    `source` is the content itself (bytes-like) or the path of a file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = Path(source).read_bytes()
    digest = hashlib.sha1(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Folder the official weights are cached in: ``home_dir()/weights/<WEIGHTS_SUBDIR>``."""
    return home_dir() / "weights" / WEIGHTS_SUBDIR


def official_base_url() -> str:
    """``$WHITEBOX_WEIGHTS_URL`` if set, else the GitHub raw URL of the pinned folder."""
    return os.environ.get(ENV_WEIGHTS_URL) or DEFAULT_BASE_URL


def offline_requested() -> bool:
    """True when ``$WHITEBOX_OFFLINE`` is 1/true/yes/on (any case)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def _file_url(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + urllib.parse.quote(name)


def _instructions(
    folder: Path, base_url: str, names: list, reason: str, served_bad: bool = False
) -> str:
    """What to place where and where to get it. `names`: the files not yet verified;
    `served_bad`: a file just downloaded from `base_url` failed verification."""
    them = "it" if len(names) == 1 else "them"
    official = base_url.rstrip("/") == DEFAULT_BASE_URL.rstrip("/")
    source = DEFAULT_BASE_URL if served_bad else base_url
    lines = [
        f"The pretrained White-box Cartoonization weights are not available: {reason}",
        "",
        ("Place this file" if len(names) == 1 else f"Place these {len(names)} files")
        + f" (from {REMOTE_FOLDER} of {AUTHORS_REPO} at commit {PINNED_COMMIT}):",
        *(f"    {name}" for name in names),
        "in either of these folders:",
        f"    {folder}    (the download cache; set {ENV_HOME} to move it)",
        "    pretrained/    (next to cartoonize.py)",
    ]
    if served_bad and not official:
        lines.append(f"{base_url} served a file that failed verification; download {them} "
                     "from the official location instead:")
    elif served_bad:
        lines.append("The official location just served a file that failed verification (cut "
                     "off or altered on the way?): try again later or from another network, or "
                     f"take {them} from a clone of {AUTHORS_REPO} at commit {PINNED_COMMIT}. "
                     "The official location:")
    else:
        lines.append(f"Download {them} from:")
    lines.extend(f"    {_file_url(source, name)}" for name in names)
    if source.rstrip("/") != DEFAULT_BASE_URL.rstrip("/"):
        lines.append(f"(official location: {DEFAULT_BASE_URL})")
    lines.append("Then run the command again.")
    return "\n".join(lines)


def _move_aside(path: Path, got: str, blob: str) -> str:
    """Rename a cached file that fails verification to ``NAME.rejected`` (``.rejected.1`` ...
    when taken; it may be the user's, so it is never deleted). Returns the message to show;
    raises WeightsVerificationError when it cannot be moved."""
    target = path.with_name(path.name + ".rejected")
    number = 0
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.rejected.{number}")
    problem = f"{path} has git blob id {got}, expected {blob}"
    try:
        os.rename(path, target)
    except OSError as error:
        raise WeightsVerificationError(
            f"{problem}, and it could not be moved aside ({error}); move or replace it."
        ) from None
    return f"{problem}; moved it aside to {target.name}."


def _copy_file_url(url: str, output_file: str, fetcher) -> None:
    """A pooch downloader for ``file://`` URLs."""
    shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlparse(url).path), output_file)


def _check_cache(folder: Path, base: str):
    """(names of OFFICIAL_FILES missing from `folder` or failing verification, messages for
    those moved aside)."""
    needed, rejected = [], []
    for name, blob in OFFICIAL_FILES.items():
        path = folder / name
        if path.is_file():
            try:
                got = git_blob_id(path)
                if got == blob:
                    continue
                rejected.append(_move_aside(path, got, blob))
            except OSError as error:
                raise WeightsUnavailable(_instructions(
                    folder, base, [name], f"cannot read {path} ({error}).")) from None
            except WeightsVerificationError as error:
                raise WeightsVerificationError(
                    _instructions(folder, base, [name], str(error))) from None
        needed.append(name)
    return needed, rejected


def _download(folder: Path, base: str, needed: list, progress: bool) -> None:
    """Fetch `needed` from `base` with pooch into a `files.staging_folder`, and move each into
    `folder` once its git blob id is verified."""
    with staging_folder(folder / "download") as incoming:
        fetcher = pooch.create(path=incoming, base_url=base, registry=dict.fromkeys(needed),
                               retry_if_failed=RETRIES)
        local = urllib.parse.urlparse(base).scheme == "file"
        for position, name in enumerate(needed):
            url = fetcher.get_url(name)
            try:
                path = fetcher.fetch(name, downloader=_copy_file_url if local else None,
                                     progressbar=progress)
                got = git_blob_id(path)
                if got != OFFICIAL_FILES[name]:
                    raise WeightsVerificationError(_instructions(
                        folder, base, needed[position:],
                        f"{name} from {url} failed verification: its git blob id is {got} but "
                        f"{OFFICIAL_FILES[name]} was expected. The downloaded file was deleted.",
                        served_bad=True))
                os.chmod(path, 0o644)
                os.replace(path, folder / name)
            except (OSError, ValueError) as error:  # requests' errors are OSErrors
                raise WeightsUnavailable(_instructions(
                    folder, base, needed[position:], f"fetching {url} failed: {error}")) from None


def ensure_official_weights(offline: Optional[bool] = None, progress: bool = True) -> Path:
    """Return the checkpoint prefix ``cache_dir()/model-33999``, downloading what is missing.

    Every cached file is checked against OFFICIAL_FILES; one that fails is moved aside to
    ``NAME.rejected`` and fetched again (`_download`: retried RETRIES times, with a tqdm bar on
    stderr when `progress`; concurrent first runs never see a partial or unverified file).
    `offline` (default ``$WHITEBOX_OFFLINE``) never uses the network.

    Raises WeightsUnavailable, whose message names the files still needed, the folders to put
    them in and where to download them, or its subclass WeightsVerificationError when a file
    failed verification.
    """
    folder, base = cache_dir(), official_base_url()
    needed, rejected = _check_cache(folder, base)
    if not needed:
        return folder / CHECKPOINT_PREFIX
    if offline_requested() if offline is None else offline:
        if rejected:
            raise WeightsVerificationError(_instructions(
                folder, base, needed,
                " ".join(rejected) + " Offline mode, so nothing was downloaded."))
        raise WeightsUnavailable(_instructions(
            folder, base, needed, f"offline mode, and {', '.join(needed)} missing from {folder}."))
    for message in rejected:
        print(message + " Fetching it again.", file=sys.stderr)
    print(LICENCE_NOTICE, file=sys.stderr, flush=True)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(level if progress else "WARNING")
    try:
        _download(folder, base, needed, progress)
    except OSError as error:
        raise WeightsUnavailable(
            _instructions(folder, base, needed, f"cannot write to {folder} ({error}).")) from None
    finally:
        logger.setLevel(level)
    return folder / CHECKPOINT_PREFIX


# The repository's pretrained/ folder (see pretrained/README.md for the manual route).
PRETRAINED = Path(__file__).resolve().parents[3] / "pretrained"


def resolve_weights(requested=None, offline=False, progress=True):
    """The checkpoint prefix (str or Path) to load: `requested` (a checkpoint folder or prefix)
    when given, else PRETRAINED when it holds a checkpoint, else the authors' checkpoint in the
    user cache, downloaded on first use unless `offline` (or $WHITEBOX_OFFLINE) says not to.

    Raises checkpoints.CheckpointError for a `requested` path without a checkpoint and
    WeightsUnavailable when the authors' files are missing and cannot be fetched.
    """
    from whitebox.model.checkpoints import CheckpointError, resolve_prefix

    if requested:
        return resolve_prefix(requested)
    try:
        return resolve_prefix(PRETRAINED)
    except CheckpointError:
        return ensure_official_weights(offline=offline or None, progress=progress)


def load_generator_weights(requested=None, offline=False, progress=True):
    """A network.Generator holding the weights `resolve_weights` finds.

    Raises WeightsUnavailable or checkpoints.CheckpointError, whose messages say what is
    missing or does not fit.
    """
    from whitebox.model.checkpoints import load_generator
    from whitebox.model.network import Generator

    generator = Generator()
    load_generator(generator, resolve_weights(requested, offline, progress))
    return generator
