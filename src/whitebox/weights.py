"""Fetch the authors' pretrained generator on first use, verify it, and keep it in a user cache.

The official checkpoint is the three files of ``test_code/saved_models/`` in
SystemErrorWang/White-box-Cartoonization at one pinned commit. Each file is checked against its git
blob id at that commit (SHA-1 of ``b"blob <size>\\0" + content``), so anyone can compare the table
below with the repository tree (``git ls-tree <commit> test_code/saved_models/``).

Typical use::

    from whitebox.weights import ensure_official_weights, WeightsUnavailable
    prefix = ensure_official_weights()      # .../model-33999, ready for tf.train.Checkpoint/Saver

The authors' ``checkpoint`` file also lists ``model-37499``, which they never published, so the
returned prefix must be restored explicitly; do not go through ``tf.train.latest_checkpoint``.

Environment variables:

* ``WHITEBOX_HOME``: root folder for this project's cache (default: the platform user cache
  folder + ``whitebox-cartoon``). Weights live in ``<root>/weights/<WEIGHTS_SUBDIR>/``.
* ``WHITEBOX_WEIGHTS_URL``: base URL the three file names are appended to (default: GitHub raw
  URLs at the pinned commit). ``file://`` URLs work too.
* ``WHITEBOX_OFFLINE=1``: never touch the network; fail with instructions if the cache is
  incomplete.
* ``WHITEBOX_WEIGHTS_TABLE``: path of a JSON object ``{file name: git blob id}`` that replaces
  OFFICIAL_FILES. Meant for end-to-end tests and private mirrors serving other files; normal use
  never sets it.

Only the standard library and tqdm are used here; nothing imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping, Optional, Union

try:  # POSIX advisory locks
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None
try:  # Windows byte-range locks
    import msvcrt
except ImportError:
    msvcrt = None

__all__ = [
    "AUTHORS_REPO",
    "PINNED_COMMIT",
    "REMOTE_FOLDER",
    "CHECKPOINT_PREFIX",
    "OFFICIAL_FILES",
    "DEFAULT_BASE_URL",
    "ENV_HOME",
    "ENV_WEIGHTS_URL",
    "ENV_OFFLINE",
    "ENV_WEIGHTS_TABLE",
    "WeightsUnavailable",
    "WeightsVerificationError",
    "git_blob_id",
    "home_dir",
    "cache_dir",
    "official_base_url",
    "offline_requested",
    "ensure_official_weights",
]

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

ENV_HOME = "WHITEBOX_HOME"
ENV_WEIGHTS_URL = "WHITEBOX_WEIGHTS_URL"
ENV_OFFLINE = "WHITEBOX_OFFLINE"
ENV_WEIGHTS_TABLE = "WHITEBOX_WEIGHTS_TABLE"

# Sub-folder of <home>/weights/ holding this commit's files; a new pin gets a new folder.
WEIGHTS_SUBDIR = f"white-box-cartoonization-{PINNED_COMMIT[:12]}"

LICENCE_NOTICE = (
    "Note: the pretrained White-box Cartoonization weights are the work of Xinrui Wang and "
    f"Jinze Yu ({AUTHORS_REPO}).\n"
    "The authors release them under CC BY-NC-SA 4.0: non-commercial use only, with "
    "attribution, and adaptations shared under the same licence.\n"
    "See https://creativecommons.org/licenses/by-nc-sa/4.0/ . This project does not "
    "redistribute them; they are fetched from the authors' repository."
)

_MARKER = ".verified.json"
_LOCK = ".lock"
_PART_SUFFIX = ".part"
_CHUNK = 1 << 16
_USER_AGENT = "whitebox-cartoon (weights fetcher; python urllib)"
_TRUE_WORDS = {"1", "true", "yes", "on"}


class WeightsUnavailable(RuntimeError):
    """The weights could not be found in the cache and could not be downloaded.

    The message is meant for the end user: it says which files to place in which folder and
    where to download them from.
    """


class WeightsVerificationError(WeightsUnavailable):
    """A file's git blob id differs from the pinned one. A download that fails is deleted; a
    file found in the cache (perhaps placed there by the user) is moved aside to
    ``NAME.rejected``, never deleted."""


class _ShortRead(OSError):
    """The server closed the connection before sending the announced number of bytes."""


# ----------------------------------------------------------------------------- hashing


def git_blob_id(path_or_bytes: Union[str, os.PathLike, bytes, bytearray, memoryview]) -> str:
    """Git's object id for a blob: SHA-1 of ``b"blob <size>\\0"`` followed by the content.

    Bytes-like arguments are hashed as they are; anything else is taken as a file path and read
    in chunks, so large files are never held in memory.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        digest = hashlib.sha1(b"blob %d\0" % len(data))
        digest.update(data)
        return digest.hexdigest()
    path = Path(path_or_bytes)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest = hashlib.sha1(b"blob %d\0" % size)
        seen = 0
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            seen += len(chunk)
    if seen != size:  # the file changed while we read it
        raise OSError(f"{path} changed size while being hashed ({size} -> {seen} bytes)")
    return digest.hexdigest()


# ----------------------------------------------------------------------------- locations


def _user_cache_root() -> Path:
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) if base else Path.home() / "AppData" / "Local"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    base = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says relative values are to be ignored.
    if base and os.path.isabs(base):
        return Path(base)
    return Path.home() / ".cache"


def home_dir() -> Path:
    """``$WHITEBOX_HOME`` if set, else ``<user cache>/whitebox-cartoon``."""
    override = os.environ.get(ENV_HOME)
    if override:
        return Path(override).expanduser()
    return _user_cache_root() / "whitebox-cartoon"


def cache_dir() -> Path:
    """Folder the official weights are cached in: ``home_dir()/weights/<WEIGHTS_SUBDIR>``.

    Linux: ``$XDG_CACHE_HOME`` or ``~/.cache``; macOS: ``~/Library/Caches``; Windows:
    ``%LOCALAPPDATA%``; each followed by ``whitebox-cartoon/weights/<WEIGHTS_SUBDIR>``.
    """
    return home_dir() / "weights" / WEIGHTS_SUBDIR


def official_base_url() -> str:
    """``$WHITEBOX_WEIGHTS_URL`` if set, else the GitHub raw URL of the pinned folder."""
    return os.environ.get(ENV_WEIGHTS_URL) or DEFAULT_BASE_URL


def offline_requested() -> bool:
    """True when ``$WHITEBOX_OFFLINE`` is 1/true/yes/on (any case)."""
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in _TRUE_WORDS


def _table_from_env() -> Optional[dict]:
    path = os.environ.get(ENV_WEIGHTS_TABLE)
    if not path:
        return None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            table = json.load(handle)
    except (OSError, ValueError) as error:
        raise ValueError(f"{ENV_WEIGHTS_TABLE}={path!r} is not a readable JSON file: {error}")
    good = isinstance(table, dict) and table and all(
        isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{40}", v)
        for k, v in table.items()
    )
    if not good:
        raise ValueError(f"{ENV_WEIGHTS_TABLE}={path!r} must hold {{file name: 40-hex blob id}}")
    return table


def _file_url(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + urllib.parse.quote(name)


def _prefix_name(files: Mapping[str, str]) -> str:
    index_names = [name for name in files if name.endswith(".index")]
    if len(index_names) != 1:
        raise ValueError(
            f"the file table must hold exactly one '*.index' file, got {sorted(files)}"
        )
    return index_names[0][: -len(".index")]


# ----------------------------------------------------------------------------- messages


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


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- cache state


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


def _read_marker(folder: Path) -> dict:
    try:
        with open(folder / _MARKER, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_marker(folder: Path, entries: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_MARKER + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entries, handle, indent=1, sort_keys=True)
        os.replace(tmp, folder / _MARKER)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stamp(path: Path, blob: str) -> Optional[dict]:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"blob": blob, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _recorded_ok(folder: Path, name: str, blob: str, marker: dict) -> bool:
    """The file is unchanged since it was verified (same size and mtime as recorded)."""
    entry = marker.get(name)
    return isinstance(entry, dict) and entry == _stamp(folder / name, blob)


def _all_recorded(folder: Path, files: Mapping[str, str]) -> bool:
    marker = _read_marker(folder)
    return all(_recorded_ok(folder, name, blob, marker) for name, blob in files.items())


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``folder/.lock`` across processes.

    Yields True when a real lock is held (fcntl or msvcrt); False when the platform has neither,
    in which case callers fall back to per-process temporary names.
    """
    if fcntl is None and msvcrt is None:  # pragma: no cover
        yield False
        return
    handle = open(folder / _LOCK, "a+b")
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        else:  # pragma: no cover - Windows
            while True:
                try:
                    handle.seek(0)
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.5)
        yield True
    finally:
        try:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            else:  # pragma: no cover - Windows
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        finally:
            handle.close()


# ----------------------------------------------------------------------------- downloading


def _parse_content_range(value: Optional[str]) -> Optional[tuple]:
    """``bytes START-END/TOTAL`` -> (start, total or None)."""
    if not value:
        return None
    match = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value)
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _fetch_once(url: str, part: Path, *, name: str, timeout: float, progress: bool) -> None:
    """One HTTP attempt: continue ``part`` with a Range request when it already has bytes.

    Raises on any network problem, including a body shorter than announced (_ShortRead), leaving
    what arrived in ``part`` for the next attempt to continue from.
    """
    from tqdm import tqdm

    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            # Nothing left to send for this range: assume the part is whole and let the hash
            # decide (a wrong part is discarded and fetched afresh by the caller).
            error.close()
            return
        raise
    with response:
        status = getattr(response, "status", None) or 200  # file:// responses have no status
        length_header = response.headers.get("Content-Length")
        expected = int(length_header) if length_header and length_header.isdigit() else None
        mode = "wb"
        start = 0
        if status == 206:
            parsed = _parse_content_range(response.headers.get("Content-Range"))
            if parsed is None or parsed[0] != have:
                # Cannot tell where these bytes belong: drop the partial file and start over.
                part.unlink()
                raise _ShortRead(
                    f"unusable Content-Range {response.headers.get('Content-Range')!r}"
                )
            mode, start = "ab", have
            total = parsed[1] if parsed[1] is not None else (
                have + expected if expected is not None else None
            )
        else:  # the server ignored Range (or there was none): start over
            total = expected
        received = 0
        with open(part, mode) as out, tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=name,
            file=sys.stderr,
            disable=not progress,
            leave=True,
        ) as bar:
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and received < expected:
            raise _ShortRead(f"connection closed after {received} of {expected} bytes")


_RETRYABLE = (
    urllib.error.URLError,  # includes HTTPError; 4xx other than 408/429 are filtered below
    http.client.HTTPException,
    ConnectionError,
    socket.timeout,
    TimeoutError,
    _ShortRead,
)


def _download_with_retries(
    url: str, part: Path, *, name: str, retries: int, backoff: float, timeout: float,
    progress: bool,
) -> None:
    attempts = max(1, int(retries))
    for attempt in range(1, attempts + 1):
        try:
            _fetch_once(url, part, name=name, timeout=timeout, progress=progress)
            return
        except _RETRYABLE as error:
            permanent = (
                isinstance(error, urllib.error.HTTPError)
                and 400 <= error.code < 500
                and error.code not in (408, 429)
            )
            if isinstance(error, urllib.error.HTTPError):
                error.close()
            if permanent or attempt == attempts:
                raise WeightsUnavailable(
                    f"downloading {url} failed after {attempt} attempt(s): {error}"
                ) from error
            delay = backoff * (2 ** (attempt - 1))
            kept = part.stat().st_size if part.exists() else 0
            _say(
                f"{name}: attempt {attempt}/{attempts} failed ({error}); retrying in "
                f"{delay:.1f} s" + (f", continuing from byte {kept}" if kept else "")
            )
            time.sleep(delay)


def _fetch_and_verify(
    folder: Path, name: str, blob: str, base_url: str, *, unique_part: bool, retries: int,
    backoff: float, timeout: float, progress: bool,
) -> None:
    url = _file_url(base_url, name)
    if unique_part:  # no lock available: never share a partial file with another process
        part = folder / f"{name}.{os.getpid()}.{time.monotonic_ns()}{_PART_SUFFIX}"
    else:
        part = folder / f"{name}{_PART_SUFFIX}"
    resumed = part.exists() and part.stat().st_size > 0
    try:
        _download_with_retries(
            url, part, name=name, retries=retries, backoff=backoff, timeout=timeout,
            progress=progress,
        )
        got = git_blob_id(part)
        if got != blob and resumed:
            # A partial file left by an older run may not match what the server sends now.
            _say(f"{name}: continued download does not verify; fetching it again from scratch")
            part.unlink()
            _download_with_retries(
                url, part, name=name, retries=retries, backoff=backoff, timeout=timeout,
                progress=progress,
            )
            got = git_blob_id(part)
        if got != blob:
            part.unlink()
            raise WeightsVerificationError(
                f"{name} from {url} failed verification: its git blob id is {got} but "
                f"{blob} was expected. The downloaded file was deleted."
            )
        os.replace(part, folder / name)
    except BaseException:
        if unique_part:
            with contextlib.suppress(OSError):
                part.unlink()
        raise


def ensure_official_weights(
    offline: Optional[bool] = None,
    base_url: Optional[str] = None,
    cache: Optional[Union[str, os.PathLike]] = None,
    files: Optional[Mapping[str, str]] = None,
    progress: bool = True,
    *,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Return the checkpoint prefix (``<cache>/model-33999``), downloading the files if needed.

    offline:  never use the network; default ``$WHITEBOX_OFFLINE`` (see offline_requested()).
    base_url: where the files are fetched from; default ``$WHITEBOX_WEIGHTS_URL`` or GitHub.
    cache:    folder to keep the files in; default cache_dir().
    files:    {file name: git blob id}; default ``$WHITEBOX_WEIGHTS_TABLE`` if set, else
              OFFICIAL_FILES (tests pass their own table).
    progress: show a tqdm progress bar per file on stderr.
    retries, backoff, timeout: attempts per file, first retry delay in seconds (doubling after
        each failure), and socket timeout in seconds.

    Once every file has been verified, a small record of sizes and modification times lets
    later calls return without hashing or any network access. Concurrent calls on the same
    folder are serialised by a lock file; files only ever appear through an atomic rename after
    verification, so readers never see a partial file.

    Raises WeightsUnavailable (message: which files to put where, and from which URL) when the
    files are missing and cannot be fetched, and its subclass WeightsVerificationError when a
    downloaded file's blob id is wrong (that download is deleted first). A file in the cache
    that fails verification is moved aside to ``NAME.rejected``, never deleted, and fetched
    again unless offline.
    """
    if files is None:
        files = _table_from_env() or OFFICIAL_FILES
    table = dict(files)
    prefix = _prefix_name(table)
    folder = Path(cache).expanduser() if cache is not None else cache_dir()
    base = base_url or official_base_url()
    if offline is None:
        offline = offline_requested()

    # Fast path: everything verified before and untouched since; no lock, no hashing.
    if _all_recorded(folder, table):
        return folder / prefix

    if offline and not all((folder / name).is_file() for name in table):
        missing = [name for name in table if not (folder / name).is_file()]
        raise WeightsUnavailable(
            _instructions(
                folder, base, missing,
                f"offline mode, and {', '.join(missing)} missing from {folder}.",
            )
        )

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsUnavailable(
            _instructions(folder, base, list(table), f"cannot create {folder} ({error}).")
        ) from error

    with _folder_lock(folder) as locked:
        # Another process may have completed the cache while we waited for the lock.
        marker = _read_marker(folder)
        verified = {}
        missing = []
        rejected = []
        for name, blob in table.items():
            path = folder / name
            if _recorded_ok(folder, name, blob, marker):
                verified[name] = marker[name]
                continue
            if not path.is_file():
                missing.append(name)
                continue
            got = git_blob_id(path)
            if got == blob:
                verified[name] = _stamp(path, blob)
                continue
            try:
                rejected.append(_move_aside(path, got, blob))
            except WeightsVerificationError as error:
                raise WeightsVerificationError(
                    _instructions(folder, base, [name], str(error))
                ) from None
            if not offline:
                _say(rejected[-1] + " Fetching it again.")
            missing.append(name)

        if missing:
            if offline:
                reason = f"offline mode, and {', '.join(missing)} missing from {folder}."
                if rejected:
                    reason = " ".join(rejected) + " Offline mode, so nothing was downloaded."
                error = WeightsVerificationError if rejected else WeightsUnavailable
                raise error(_instructions(folder, base, missing, reason))
            _say(LICENCE_NOTICE)
            _say(f"Fetching {len(missing)} file(s) from {base} into {folder}")
            for name in missing:
                try:
                    _fetch_and_verify(
                        folder, name, table[name], base, unique_part=not locked,
                        retries=retries, backoff=backoff, timeout=timeout, progress=progress,
                    )
                except WeightsVerificationError as error:
                    raise WeightsVerificationError(_instructions(
                        folder, base, [n for n in table if n not in verified], str(error),
                        served_bad=True,
                    )) from None
                except WeightsUnavailable as error:
                    raise WeightsUnavailable(_instructions(
                        folder, base, [n for n in table if n not in verified], str(error),
                    )) from error.__cause__
                verified[name] = _stamp(folder / name, table[name])

        # Keep records of other tables' files (e.g. a different pin) that are still valid.
        record = {k: v for k, v in marker.items() if k not in table}
        record.update(verified)
        with contextlib.suppress(OSError):  # the record only saves work; never fatal
            _write_marker(folder, record)
    return folder / prefix


# The repository's pretrained/ folder (see pretrained/README.md for the manual route).
PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"


def resolve_weights(requested=None, offline=False, progress=True):
    """The checkpoint prefix (str or Path) to load: `requested` (a checkpoint folder or prefix)
    when given, else PRETRAINED when it holds a checkpoint, else the authors' checkpoint in the
    user cache, downloaded on first use unless `offline` (or $WHITEBOX_OFFLINE) says not to.

    Raises checkpoints.CheckpointError for a `requested` path without a checkpoint and
    WeightsUnavailable when the authors' files are missing and cannot be fetched.
    """
    from whitebox.checkpoints import CheckpointError, resolve_prefix

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
    from whitebox.checkpoints import load_generator
    from whitebox.network import Generator

    generator = Generator()
    load_generator(generator, resolve_weights(requested, offline, progress))
    return generator
