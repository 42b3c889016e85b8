"""Fetch the authors' pretrained generator on first use, verify it, and keep it in a user cache
(docs/ROBUSTNESS.md, "Weights"). Nothing here imports TensorFlow.

The official checkpoint is the three files of REMOTE_FOLDER in AUTHORS_REPO at PINNED_COMMIT,
each checked against its git blob id there (`git ls-tree <commit> test_code/saved_models/`
shows the same ids). Their ``checkpoint`` file also lists ``model-37499``, never published:
restore the returned prefix, not ``tf.train.latest_checkpoint``.

Environment: ``WHITEBOX_HOME`` (the cache root, `files.home_dir`), ``WHITEBOX_WEIGHTS_URL``
(the base URL the names are appended to: http(s)://, ftp://, file://), ``WHITEBOX_OFFLINE=1``.
"""

import hashlib
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pooch

from whitebox.base import notice
from whitebox.base.errors import WeightsError
from whitebox.base.files import ENV_HOME, home_dir, staging_folder

AUTHORS_REPO = "SystemErrorWang/White-box-Cartoonization"
PINNED_COMMIT = "ee97277d7fd873b89e9b8e1341efe74e10dd4124"
REMOTE_FOLDER = "test_code/saved_models/"
CHECKPOINT_PREFIX = "model-33999"

# name -> git blob id at PINNED_COMMIT, in the order they are fetched (smallest first).
OFFICIAL_FILES = {
    "checkpoint": "99d1f471e36fa83f06d8d347df26ccbfb7cba8aa",
    "model-33999.index": "f1749e5542e83cf01a19aa1b2a3a7370a17efa41",
    "model-33999.data-00000-of-00001": "785cdcb8a0ab9bf44171c087878cc84863562eab",
}

DEFAULT_BASE_URL = (
    f"https://raw.githubusercontent.com/{AUTHORS_REPO}/{PINNED_COMMIT}/{REMOTE_FOLDER}"
)

ENV_WEIGHTS_URL = "WHITEBOX_WEIGHTS_URL"
ENV_OFFLINE = "WHITEBOX_OFFLINE"

# Sub-folder of <home>/weights/: a new pin gets a new folder.
WEIGHTS_SUBDIR = f"white-box-cartoonization-{PINNED_COMMIT[:12]}"

# Further attempts per file after a network failure (pooch waits 1 s, 2 s, ...).
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
    """The weights are not in the cache and could not be downloaded; the message says which
    files to place where, and where to download them."""


class WeightsVerificationError(WeightsUnavailable):
    """A file's git blob id differs from the pinned one: a download is deleted, a cached file
    (perhaps the user's) moved aside to ``NAME.rejected``."""


def git_blob_id(source):
    """Git's blob id of `source` (bytes-like, or a file's path): SHA-1 of ``b"blob <size>\\0"``
    and the content."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = Path(source).read_bytes()
    digest = hashlib.sha1(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def cache_dir():
    """``home_dir()/weights/<WEIGHTS_SUBDIR>``."""
    return home_dir() / "weights" / WEIGHTS_SUBDIR


def official_base_url():
    """``$WHITEBOX_WEIGHTS_URL`` if set, else the GitHub raw URL of the pinned folder."""
    return os.environ.get(ENV_WEIGHTS_URL) or DEFAULT_BASE_URL


def offline_requested():
    """True when ``$WHITEBOX_OFFLINE`` is 1/true/yes/on (any case)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def _file_url(base_url, name):
    return base_url.rstrip("/") + "/" + urllib.parse.quote(name)


def _instructions(folder, base_url, names, reason, served_bad=False):
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


def _move_aside(path, got, blob):
    """Rename a cached file that fails verification to ``NAME.rejected`` (``.rejected.1`` ...
    when taken). Returns the message; WeightsVerificationError when it cannot be moved."""
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


def _copy_file_url(url, output_file, fetcher):
    """A pooch downloader for ``file://`` URLs."""
    shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlparse(url).path), output_file)


def _check_cache(folder, base):
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


def _download(folder, base, needed, progress):
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


def ensure_official_weights(offline=None, progress=True, warn=notice):
    """The checkpoint prefix ``cache_dir()/model-33999``, downloading what is missing or fails
    verification (moved aside first); a bar on stderr with `progress`; `warn` gets the
    licence notice and each file moved aside. `offline` (default ``$WHITEBOX_OFFLINE``) never
    uses the network. Raises WeightsUnavailable, or WeightsVerificationError when a file failed
    verification.
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
        warn(message + " Fetching it again.")
    warn(LICENCE_NOTICE)
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


def resolve_weights(requested=None, offline=False, progress=True, warn=notice):
    """The checkpoint prefix to load: `requested` (a folder or prefix), else PRETRAINED when it
    holds a checkpoint, else `ensure_official_weights`. Raises checkpoints.CheckpointError
    for a `requested` path without a checkpoint, WeightsUnavailable.
    """
    from whitebox.model.checkpoints import CheckpointError, resolve_prefix

    if requested:
        return resolve_prefix(requested)
    try:
        return resolve_prefix(PRETRAINED)
    except CheckpointError:
        return ensure_official_weights(offline=offline or None, progress=progress, warn=warn)


def load_generator_weights(requested=None, offline=False, progress=True, warn=notice):
    """(network.Generator holding the weights `resolve_weights` finds, their checkpoint
    prefix). Raises its errors, or a CheckpointError (a WeightsError) for weights that do not
    fit."""
    from whitebox.model.checkpoints import load_generator
    from whitebox.model.network import Generator

    generator, prefix = Generator(), resolve_weights(requested, offline, progress, warn)
    load_generator(generator, prefix)
    return generator, prefix
