"""Tests for whitebox.weights: download, verification, caching, offline use and concurrency.

No internet is needed: each test serves small files of its own from a ThreadingHTTPServer on
127.0.0.1 and passes that server's URL as the base URL.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from whitebox import weights
from whitebox.weights import (
    WeightsUnavailable,
    WeightsVerificationError,
    ensure_official_weights,
    git_blob_id,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
AUTHORS_ORIGINAL = SHARED / "weights" / "authors_original"

# A stand-in checkpoint: three files named like a TF checkpoint, contents made up here.
FAKE_CONTENT = {
    "checkpoint": b'model_checkpoint_path: "model-7"\nall_model_checkpoint_paths: "model-7"\n',
    "model-7.index": bytes(range(256)) * 9,
    "model-7.data-00000-of-00001": bytes((i * 7919 + 13) % 251 for i in range(200_000)),
}
FAKE_TABLE = {name: git_blob_id(data) for name, data in FAKE_CONTENT.items()}
DATA = "model-7.data-00000-of-00001"


class FakeServer:
    """Serves FAKE_CONTENT (or replacements) and records every request as (name, Range)."""

    def __init__(self):
        self.content = dict(FAKE_CONTENT)
        self.requests = []
        self.honour_range = True
        self.drop_after = {}  # name -> body bytes to send before closing, applied once
        self.hold = None  # callable: the data file's body waits until it returns True
        self.data_served_at = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
                wanted = self.headers.get("Range")
                with server._lock:
                    server.requests.append((name, wanted))
                    cut = server.drop_after.pop(name, None)
                data = server.content.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
                if match and server.honour_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                body = data[start:]
                if cut is not None:  # announce the whole body, send part of it, hang up
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if name == DATA and server.hold is not None:
                    deadline = time.monotonic() + 20
                    while not server.hold() and time.monotonic() < deadline:
                        time.sleep(0.01)
                    time.sleep(0.1)
                self.wfile.write(body)
                if name == DATA:
                    server.data_served_at = time.time()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/repo/saved_models/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def names_requested(self):
        with self._lock:
            return [name for name, _ in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in (
        weights.ENV_HOME, weights.ENV_OFFLINE, weights.ENV_WEIGHTS_URL, weights.ENV_WEIGHTS_TABLE
    ):
        monkeypatch.delenv(var, raising=False)
    # Never route the local test server through a proxy someone configured.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    srv = FakeServer()
    yield srv
    srv.close()


def fetch(server, cache, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("backoff", 0.01)
    return ensure_official_weights(base_url=server.url, cache=cache, files=FAKE_TABLE, **kwargs)


def leftovers(cache):
    return sorted(p.name for p in Path(cache).glob("*.part"))


# ----------------------------------------------------------------------------- blob ids


def test_git_blob_id_matches_git_for_known_blobs(tmp_path):
    # `git hash-object` of an empty file and of "hello\n".
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    path = tmp_path / "blob"
    path.write_bytes(FAKE_CONTENT[DATA])
    assert git_blob_id(path) == git_blob_id(FAKE_CONTENT[DATA])
    assert git_blob_id(str(path)) == FAKE_TABLE[DATA]


def test_git_blob_id_of_authors_files_matches_pinned_table():
    if not AUTHORS_ORIGINAL.is_dir():
        reason = f"{AUTHORS_ORIGINAL} is absent (the shared folder ../shared is not checked out)"
        print("SKIP:", reason)
        pytest.skip(reason)
    for name in ("model-33999.index", "checkpoint"):
        assert git_blob_id(AUTHORS_ORIGINAL / name) == weights.OFFICIAL_FILES[name], name


def test_pinned_source_and_locations(monkeypatch, tmp_path):
    assert weights.OFFICIAL_FILES == {
        "checkpoint": "99d1f471e36fa83f06d8d347df26ccbfb7cba8aa",
        "model-33999.index": "f1749e5542e83cf01a19aa1b2a3a7370a17efa41",
        "model-33999.data-00000-of-00001": "785cdcb8a0ab9bf44171c087878cc84863562eab",
    }
    assert weights.DEFAULT_BASE_URL == (
        "https://raw.githubusercontent.com/SystemErrorWang/White-box-Cartoonization/"
        "ee97277d7fd873b89e9b8e1341efe74e10dd4124/test_code/saved_models/"
    )
    assert weights.official_base_url() == weights.DEFAULT_BASE_URL
    monkeypatch.setenv(weights.ENV_WEIGHTS_URL, "http://mirror.example/w/")
    assert weights.official_base_url() == "http://mirror.example/w/"

    monkeypatch.setenv(weights.ENV_HOME, str(tmp_path / "home"))
    assert weights.cache_dir().parent.parent == tmp_path / "home"
    monkeypatch.delenv(weights.ENV_HOME)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert weights.home_dir() == tmp_path / "xdg" / "whitebox-cartoon"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert weights.home_dir() == Path.home() / ".cache" / "whitebox-cartoon"


# ----------------------------------------------------------------------------- downloads


def test_fresh_cache_downloads_and_verifies(server, tmp_path, capsys):
    cache = tmp_path / "cache"
    prefix = fetch(server, cache)
    assert prefix == cache / "model-7"
    for name, data in FAKE_CONTENT.items():
        assert (cache / name).read_bytes() == data
    assert sorted(server.names_requested()) == sorted(FAKE_CONTENT)
    assert leftovers(cache) == []
    err = capsys.readouterr().err
    assert "CC BY-NC-SA 4.0" in err and "non-commercial" in err


def test_second_run_makes_no_request_and_does_not_rehash(server, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    first = fetch(server, cache)
    capsys.readouterr()
    server.requests.clear()

    def no_hashing(_):
        raise AssertionError("verified files were hashed again")

    monkeypatch.setattr(weights, "git_blob_id", no_hashing)
    assert fetch(server, cache) == first
    assert server.requests == []
    assert "CC BY-NC-SA" not in capsys.readouterr().err


def test_file_changed_after_verification_is_fetched_again(server, tmp_path):
    cache = tmp_path / "cache"
    fetch(server, cache)
    server.requests.clear()
    damaged = bytearray(FAKE_CONTENT["model-7.index"])
    damaged[100] ^= 0xFF
    (cache / "model-7.index").write_bytes(bytes(damaged))
    fetch(server, cache)
    assert server.names_requested() == ["model-7.index"]
    assert (cache / "model-7.index").read_bytes() == FAKE_CONTENT["model-7.index"]


def test_corrupted_byte_is_rejected_and_nothing_is_kept(server, tmp_path):
    cache = tmp_path / "cache"
    bad = bytearray(FAKE_CONTENT[DATA])
    bad[len(bad) // 3] ^= 0x01
    server.content[DATA] = bytes(bad)
    with pytest.raises(WeightsVerificationError) as info:
        fetch(server, cache)
    message = str(info.value)
    assert FAKE_TABLE[DATA] in message and git_blob_id(bytes(bad)) in message
    assert "deleted" in message
    assert not (cache / DATA).exists()
    assert leftovers(cache) == []

    # With the right bytes back on the server, only the rejected file is fetched.
    server.content[DATA] = FAKE_CONTENT[DATA]
    server.requests.clear()
    assert fetch(server, cache) == cache / "model-7"
    assert server.names_requested() == [DATA]
    assert (cache / DATA).read_bytes() == FAKE_CONTENT[DATA]


@pytest.mark.parametrize("honour_range", [True, False], ids=["range-206", "range-ignored"])
def test_dropped_connection_is_retried_and_resumed(server, tmp_path, honour_range, capsys):
    cache = tmp_path / "cache"
    half = len(FAKE_CONTENT[DATA]) // 2
    server.drop_after[DATA] = half
    server.honour_range = honour_range
    assert fetch(server, cache) == cache / "model-7"
    assert (cache / DATA).read_bytes() == FAKE_CONTENT[DATA]
    data_requests = [rng for name, rng in server.requests if name == DATA]
    # First attempt asks for everything; the retry continues from what arrived.
    assert data_requests == [None, f"bytes={half}-"]
    assert leftovers(cache) == []
    assert "retrying" in capsys.readouterr().err


def test_stale_partial_file_that_does_not_verify_is_refetched(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / (DATA + ".part")).write_bytes(b"\x00" * 1000)  # left by some older run
    fetch(server, cache)
    assert (cache / DATA).read_bytes() == FAKE_CONTENT[DATA]
    assert [rng for name, rng in server.requests if name == DATA] == ["bytes=1000-", None]


def test_missing_file_on_server_fails_once_with_instructions(server, tmp_path):
    cache = tmp_path / "cache"
    del server.content[DATA]
    with pytest.raises(WeightsUnavailable) as info:
        fetch(server, cache, retries=3)
    assert server.names_requested().count(DATA) == 1  # a 404 is not worth retrying
    assert "404" in str(info.value)
    assert server.url + DATA in str(info.value)


def test_unreachable_server_gives_clear_error_after_retries(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/w/"
    cache = tmp_path / "cache"
    with pytest.raises(WeightsUnavailable) as info:
        ensure_official_weights(
            base_url=base, cache=cache, files=FAKE_TABLE, progress=False, retries=2, backoff=0.01,
        )
    message = str(info.value)
    assert "after 2 attempt(s)" in message
    for name in FAKE_TABLE:
        assert name in message
    assert str(cache) in message and "pretrained/" in message
    assert not (cache / "checkpoint").exists()


def test_environment_selects_url_table_and_cache(server, tmp_path, monkeypatch):
    table_file = tmp_path / "table.json"
    table_file.write_text(json.dumps(FAKE_TABLE))
    monkeypatch.setenv(weights.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setenv(weights.ENV_WEIGHTS_URL, server.url)
    monkeypatch.setenv(weights.ENV_WEIGHTS_TABLE, str(table_file))
    prefix = ensure_official_weights(progress=False)
    assert prefix == weights.cache_dir() / "model-7"
    assert prefix.parent.is_relative_to(tmp_path / "home")
    assert (prefix.parent / DATA).read_bytes() == FAKE_CONTENT[DATA]
    table_file.write_text('{"checkpoint": "not-a-blob-id"}')
    with pytest.raises(ValueError, match="blob id"):
        ensure_official_weights(progress=False)


# ----------------------------------------------------------------------------- offline


@pytest.mark.parametrize("via_env", [False, True], ids=["argument", "WHITEBOX_OFFLINE"])
def test_offline_with_empty_cache_raises_without_network(server, tmp_path, monkeypatch, via_env):
    cache = tmp_path / "cache"
    if via_env:
        monkeypatch.setenv(weights.ENV_OFFLINE, "1")
        kwargs = {}
    else:
        kwargs = {"offline": True}
    with pytest.raises(WeightsUnavailable) as info:
        fetch(server, cache, **kwargs)
    message = str(info.value)
    assert "offline" in message
    for name in FAKE_TABLE:
        assert name in message
        assert server.url + name in message
    assert str(cache) in message and "pretrained/" in message
    assert server.requests == []
    assert not cache.exists()


def test_offline_with_complete_cache_verifies_without_network(server, tmp_path):
    cache = tmp_path / "cache"
    fetch(server, cache)
    (cache / ".verified.json").unlink()  # force a full re-check from disk
    server.requests.clear()
    assert fetch(server, cache, offline=True) == cache / "model-7"
    assert server.requests == []
    recorded = json.loads((cache / ".verified.json").read_text())
    assert {name: entry["blob"] for name, entry in recorded.items()} == FAKE_TABLE


def test_default_table_offline_message_names_official_files(tmp_path):
    with pytest.raises(WeightsUnavailable) as info:
        ensure_official_weights(offline=True, cache=tmp_path / "c", progress=False)
    message = str(info.value)
    for name in weights.OFFICIAL_FILES:
        assert weights.DEFAULT_BASE_URL + name in message


# ----------------------------------------------------------------------------- files users place


def bad_copy(name):
    damaged = bytearray(FAKE_CONTENT[name])
    damaged[7] ^= 0x01
    return bytes(damaged)


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "online"])
def test_placed_file_that_fails_verification_is_moved_aside_not_deleted(
        server, tmp_path, offline, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, data in FAKE_CONTENT.items():
        (cache / name).write_bytes(bad_copy(name) if name == DATA else data)
    if offline:
        with pytest.raises(WeightsVerificationError) as info:
            fetch(server, cache, offline=True)
        message = str(info.value)
        assert server.requests == []
        assert not (cache / DATA).exists()
    else:
        fetch(server, cache)
        message = capsys.readouterr().err
        assert server.names_requested() == [DATA]
        assert (cache / DATA).read_bytes() == FAKE_CONTENT[DATA]
    assert (cache / (DATA + ".rejected")).read_bytes() == bad_copy(DATA)
    assert f"moved it aside to {DATA}.rejected" in message and "deleted" not in message
    # A second bad copy does not replace the first one set aside.
    if offline:
        (cache / DATA).write_bytes(b"another attempt")
        with pytest.raises(WeightsVerificationError):
            fetch(server, cache, offline=True)
        assert (cache / (DATA + ".rejected")).read_bytes() == bad_copy(DATA)
        assert (cache / (DATA + ".rejected.1")).read_bytes() == b"another attempt"


def test_offline_message_lists_only_the_files_still_needed(server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    for name, data in FAKE_CONTENT.items():
        (cache / name).write_bytes(bad_copy(name) if name == DATA else data)
    with pytest.raises(WeightsVerificationError) as info:
        fetch(server, cache, offline=True)
    message = str(info.value)
    assert "Place this file" in message and "Place these" not in message
    assert f"    {DATA}\n" in message and "    checkpoint\n" not in message


@pytest.mark.parametrize("official", [False, True], ids=["mirror", "official"])
def test_bad_download_message_names_only_that_file_and_warns_about_its_source(
        server, tmp_path, official, monkeypatch):
    cache = tmp_path / "cache"
    server.content[DATA] = bad_copy(DATA)
    if official:  # pretend the local server is the official location
        monkeypatch.setattr(weights, "DEFAULT_BASE_URL", server.url)
    with pytest.raises(WeightsVerificationError) as info:
        fetch(server, cache)
    message = str(info.value)
    assert "Place this file" in message
    listed = [line.strip() for line in message.splitlines() if line.startswith("    ")]
    assert DATA in listed and "checkpoint" not in listed and "model-7.index" not in listed
    assert "served a file that failed verification" in message
    if official:
        assert server.url + DATA in listed
    else:  # named as the source of the bad file, not as the place to get it
        assert server.url + DATA not in listed
        assert weights.DEFAULT_BASE_URL + DATA in listed


@pytest.mark.parametrize("quiet", [True, False])
def test_cartoonize_quiet_hides_the_download_progress_bar(server, tmp_path, monkeypatch, capsys,
                                                          quiet):
    import cartoonize

    table = tmp_path / "table.json"
    table.write_text(json.dumps(FAKE_TABLE))
    monkeypatch.setenv(weights.ENV_WEIGHTS_URL, server.url)
    monkeypatch.setenv(weights.ENV_WEIGHTS_TABLE, str(table))
    monkeypatch.setenv(weights.ENV_HOME, str(tmp_path / "home"))
    monkeypatch.setattr(cartoonize, "REPO", tmp_path / "clone")  # an empty pretrained/
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"not decoded: the made-up weights fail first")
    args = ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out")] + ["-q"] * quiet
    assert cartoonize.main(args) == 2  # the stand-in files are no checkpoint
    err = capsys.readouterr().err
    assert sorted(server.names_requested()) == sorted(FAKE_CONTENT)
    assert ("100%" in err) != quiet


# ----------------------------------------------------------------------------- concurrency


CHILD = """
import json, sys, time
from whitebox.weights import ensure_official_weights
base, cache, table = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
started = time.time()
open(sys.argv[4], "w").close()  # tell the server this process is running
print(ensure_official_weights(base_url=base, cache=cache, files=table, progress=False))
print(started)
"""


def test_two_processes_starting_together_both_succeed(server, tmp_path):
    cache = tmp_path / "cache"
    flags = [tmp_path / "started-0", tmp_path / "started-1"]
    # Keep the first download in flight until both processes are running.
    server.hold = lambda: all(flag.exists() for flag in flags)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    argv = [sys.executable, "-c", CHILD, server.url, str(cache), json.dumps(FAKE_TABLE)]
    children = [
        subprocess.Popen(
            argv + [str(flag)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for flag in flags
    ]
    results = [child.communicate(timeout=60) for child in children]
    starts = []
    for child, (out, err) in zip(children, results):
        assert child.returncode == 0, err
        path, started = out.split()
        assert path == str(cache / "model-7")
        starts.append(float(started))
    # Both had begun before the data file was fully sent, so they really did overlap.
    assert server.data_served_at is not None and max(starts) < server.data_served_at
    for name, data in FAKE_CONTENT.items():
        assert (cache / name).read_bytes() == data
    # The lock makes the second process find the finished cache instead of downloading again.
    assert sorted(server.names_requested()) == sorted(FAKE_CONTENT)
    assert leftovers(cache) == []
