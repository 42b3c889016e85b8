"""Tests for whitebox.infer.weights: download, verification, caching, offline use and concurrency.

No internet is needed: each test serves a made-up checkpoint from a ThreadingHTTPServer on
127.0.0.1 (or a file:// folder), points WHITEBOX_WEIGHTS_URL and WHITEBOX_HOME at it and at a
temporary folder, and swaps the pinned blob-id table for the made-up files' ids.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from whitebox.infer import weights
from whitebox.infer.weights import (
    WeightsUnavailable,
    WeightsVerificationError,
    ensure_official_weights,
    git_blob_id,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
AUTHORS_ORIGINAL = REPO_ROOT.parent / "shared" / "weights" / "authors_original"

# A stand-in for the authors' three files: the official names, contents made up here.
DATA = "model-33999.data-00000-of-00001"
FAKE_CONTENT = {
    "checkpoint": b'model_checkpoint_path: "model-33999"\n',
    "model-33999.index": bytes(range(256)) * 9,
    DATA: bytes((i * 7919 + 13) % 251 for i in range(200_000)),
}
FAKE_TABLE = {name: git_blob_id(data) for name, data in FAKE_CONTENT.items()}


class FakeServer:
    """Serves FAKE_CONTENT (or replacements) and records the name of every file requested."""

    def __init__(self):
        self.content = dict(FAKE_CONTENT)
        self.requests = []
        self.drop_after = {}  # name -> bytes to send before hanging up, applied once
        self.hold = None  # callable: the data file's body waits until it returns True
        self.data_served_at = None
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
                with server._lock:
                    server.requests.append(name)
                    cut = server.drop_after.pop(name, None)
                data = server.content.get(name)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if cut is not None:  # announce the whole body, send part of it, hang up
                    self.wfile.write(data[:cut])
                    self.close_connection = True
                    return
                if name == DATA and server.hold is not None:
                    deadline = time.monotonic() + 20
                    while not server.hold() and time.monotonic() < deadline:
                        time.sleep(0.01)
                    time.sleep(0.1)
                self.wfile.write(data)
                if name == DATA and server.data_served_at is None:
                    server.data_served_at = time.time()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/repo/saved_models/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv(weights.ENV_OFFLINE, raising=False)
    monkeypatch.delenv(weights.ENV_WEIGHTS_URL, raising=False)
    monkeypatch.setenv(weights.ENV_HOME, str(tmp_path / "home"))
    # Never route the local test server through a proxy someone configured.
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server(monkeypatch):
    srv = FakeServer()
    monkeypatch.setenv(weights.ENV_WEIGHTS_URL, srv.url)
    monkeypatch.setattr(weights, "OFFICIAL_FILES", FAKE_TABLE)
    yield srv
    srv.close()


def fetch(**kwargs):
    kwargs.setdefault("progress", False)
    return ensure_official_weights(**kwargs)


def leftovers(cache):
    """Anything in the cache besides the three files and files set aside."""
    return sorted(p.name for p in Path(cache).iterdir()
                  if p.name not in FAKE_CONTENT and ".rejected" not in p.name)


def bad_copy(name):
    damaged = bytearray(FAKE_CONTENT[name])
    damaged[7] ^= 0x01
    return bytes(damaged)


# ----------------------------------------------------------------------------- blob ids, places


def test_git_blob_id_matches_git_for_known_blobs(tmp_path):
    # `git hash-object` of an empty file and of "hello\n".
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    path = tmp_path / "blob"
    path.write_bytes(b"hello\n")
    assert git_blob_id(path) == git_blob_id(str(path)) == git_blob_id(b"hello\n")


def test_git_blob_id_of_authors_files_matches_pinned_table():
    if not AUTHORS_ORIGINAL.is_dir():
        reason = f"{AUTHORS_ORIGINAL} is absent (the shared folder ../shared is not checked out)"
        print("SKIP:", reason)
        pytest.skip(reason)
    present = [name for name in weights.OFFICIAL_FILES if (AUTHORS_ORIGINAL / name).is_file()]
    assert present
    for name in present:
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

    assert weights.cache_dir().parent.parent == tmp_path / "home"
    monkeypatch.delenv(weights.ENV_HOME)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert weights.home_dir() == tmp_path / "xdg" / "whitebox-cartoon"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert weights.home_dir() == Path.home() / ".cache" / "whitebox-cartoon"


# ----------------------------------------------------------------------------- downloads


def test_first_use_downloads_and_verifies_then_makes_no_request(server, capsys):
    cache = weights.cache_dir()
    notices = []
    assert fetch(warn=notices.append) == cache / "model-33999"
    for name, data in FAKE_CONTENT.items():
        assert (cache / name).read_bytes() == data
    assert sorted(server.requests) == sorted(FAKE_CONTENT)
    assert leftovers(cache) == []
    assert len(notices) == 1
    assert "CC BY-NC-SA 4.0" in notices[0] and "non-commercial" in notices[0]
    assert capsys.readouterr() == ("", "")  # the library prints nothing itself

    server.requests.clear()
    assert fetch(warn=notices.append) == cache / "model-33999"
    assert server.requests == [] and len(notices) == 1


def test_without_warn_the_notice_goes_to_the_whitebox_logger(server, caplog):
    """The Python API's default: the 'whitebox' logger, which an application configures."""
    fetch()
    assert [(r.name, r.levelname) for r in caplog.records] == [("whitebox", "WARNING")]
    assert "CC BY-NC-SA 4.0" in caplog.records[0].getMessage()


def test_file_url_mirror_works(server, monkeypatch, tmp_path):
    mirror = tmp_path / "mirror folder"
    mirror.mkdir()
    for name, data in FAKE_CONTENT.items():
        (mirror / name).write_bytes(data)
    monkeypatch.setenv(weights.ENV_WEIGHTS_URL, mirror.as_uri() + "/")
    prefix = fetch()
    assert (prefix.parent / DATA).read_bytes() == FAKE_CONTENT[DATA]
    assert server.requests == []


def test_corrupted_byte_is_rejected_and_nothing_is_kept(server):
    cache = weights.cache_dir()
    bad = bytearray(FAKE_CONTENT[DATA])
    bad[len(bad) // 3] ^= 0x01
    server.content[DATA] = bytes(bad)
    with pytest.raises(WeightsVerificationError) as info:
        fetch()
    message = str(info.value)
    assert FAKE_TABLE[DATA] in message and git_blob_id(bytes(bad)) in message
    assert "deleted" in message
    assert not (cache / DATA).exists()
    assert leftovers(cache) == []

    # With the right bytes back on the server, only the rejected file is fetched.
    server.content[DATA] = FAKE_CONTENT[DATA]
    server.requests.clear()
    assert fetch() == cache / "model-33999"
    assert server.requests == [DATA]
    assert (cache / DATA).read_bytes() == FAKE_CONTENT[DATA]


def test_dropped_connection_is_retried(server):
    server.drop_after[DATA] = len(FAKE_CONTENT[DATA]) // 2
    prefix = fetch()
    assert (prefix.parent / DATA).read_bytes() == FAKE_CONTENT[DATA]
    assert server.requests.count(DATA) == 2  # the whole file again
    assert leftovers(prefix.parent) == []


def test_missing_file_on_server_gives_instructions(server, monkeypatch):
    monkeypatch.setattr(weights, "RETRIES", 0)
    del server.content[DATA]
    with pytest.raises(WeightsUnavailable) as info:
        fetch()
    message = str(info.value)
    assert "404" in message and server.url + DATA in message
    assert "Place this file" in message  # the two others were fetched
    assert leftovers(weights.cache_dir()) == []


def test_unreachable_server_gives_clear_error(server, monkeypatch):
    monkeypatch.setattr(weights, "RETRIES", 0)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(weights.ENV_WEIGHTS_URL, f"http://127.0.0.1:{port}/w/")
    with pytest.raises(WeightsUnavailable) as info:
        fetch()
    message = str(info.value)
    for name in FAKE_TABLE:
        assert f"    {name}\n" in message
        assert f"    http://127.0.0.1:{port}/w/{name}\n" in message
    assert str(weights.cache_dir()) in message and "pretrained/" in message
    assert not (weights.cache_dir() / "checkpoint").exists()


# ----------------------------------------------------------------------------- offline


@pytest.mark.parametrize("via_env", [False, True], ids=["argument", "WHITEBOX_OFFLINE"])
def test_offline_with_empty_cache_raises_without_network(server, monkeypatch, via_env):
    if via_env:
        monkeypatch.setenv(weights.ENV_OFFLINE, "1")
        kwargs = {}
    else:
        kwargs = {"offline": True}
    with pytest.raises(WeightsUnavailable) as info:
        fetch(**kwargs)
    message = str(info.value)
    assert "offline" in message
    for name in FAKE_TABLE:
        assert server.url + name in message
    assert str(weights.cache_dir()) in message and "pretrained/" in message
    assert server.requests == []
    assert not weights.cache_dir().exists()


def test_offline_with_complete_cache_needs_no_network(server):
    fetch()
    server.requests.clear()
    assert fetch(offline=True) == weights.cache_dir() / "model-33999"
    assert server.requests == []


def test_default_table_offline_message_names_official_files():
    with pytest.raises(WeightsUnavailable) as info:
        fetch(offline=True)
    for name in weights.OFFICIAL_FILES:
        assert weights.DEFAULT_BASE_URL + name in str(info.value)


# ----------------------------------------------------------------------------- files users place


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "online"])
def test_placed_file_that_fails_verification_is_moved_aside_not_deleted(server, offline):
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    for name, data in FAKE_CONTENT.items():
        (cache / name).write_bytes(bad_copy(name) if name == DATA else data)
    if offline:
        with pytest.raises(WeightsVerificationError) as info:
            fetch(offline=True)
        message = str(info.value)
        assert server.requests == []
        assert not (cache / DATA).exists()
    else:
        notices = []
        fetch(warn=notices.append)
        message = " ".join(notices)
        assert server.requests == [DATA]
        assert (cache / DATA).read_bytes() == FAKE_CONTENT[DATA]
    assert (cache / (DATA + ".rejected")).read_bytes() == bad_copy(DATA)
    assert f"moved it aside to {DATA}.rejected" in message and "deleted" not in message
    # A second bad copy does not replace the first one set aside.
    (cache / DATA).write_bytes(b"another attempt")
    if offline:
        with pytest.raises(WeightsVerificationError):
            fetch(offline=True)
    else:
        fetch()
    assert (cache / (DATA + ".rejected")).read_bytes() == bad_copy(DATA)
    assert (cache / (DATA + ".rejected.1")).read_bytes() == b"another attempt"


def test_offline_message_lists_only_the_files_still_needed(server):
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    for name, data in FAKE_CONTENT.items():
        (cache / name).write_bytes(bad_copy(name) if name == DATA else data)
    with pytest.raises(WeightsVerificationError) as info:
        fetch(offline=True)
    message = str(info.value)
    assert "Place this file" in message and "Place these" not in message
    assert f"    {DATA}\n" in message and "    checkpoint\n" not in message


def test_unreadable_cached_file_is_a_clear_error(server, monkeypatch):
    fetch()
    real = weights.git_blob_id

    def unreadable(path):
        if Path(path).name == DATA:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(weights, "git_blob_id", unreadable)
    server.requests.clear()
    with pytest.raises(WeightsUnavailable, match="cannot read .*Permission denied") as info:
        fetch()
    assert f"    {DATA}\n" in str(info.value) and server.requests == []
    assert (weights.cache_dir() / DATA).read_bytes() == FAKE_CONTENT[DATA]


@pytest.mark.parametrize("official", [False, True], ids=["mirror", "official"])
def test_bad_download_message_names_only_that_file_and_warns_about_its_source(
        server, official, monkeypatch):
    server.content[DATA] = bad_copy(DATA)
    if official:  # pretend the local server is the official location
        monkeypatch.setattr(weights, "DEFAULT_BASE_URL", server.url)
    with pytest.raises(WeightsVerificationError) as info:
        fetch()
    message = str(info.value)
    assert "Place this file" in message
    listed = [line.strip() for line in message.splitlines() if line.startswith("    ")]
    assert DATA in listed and "checkpoint" not in listed and "model-33999.index" not in listed
    assert "served a file that failed verification" in message
    if official:
        assert server.url + DATA in listed
    else:  # named as the source of the bad file, not as the place to get it
        assert server.url + DATA not in listed
        assert weights.DEFAULT_BASE_URL + DATA in listed


@pytest.mark.parametrize("quiet", [True, False])
def test_cartoonize_quiet_hides_the_download_progress(server, tmp_path, monkeypatch, capfd, quiet):
    import cartoonize

    monkeypatch.setattr(weights, "PRETRAINED", tmp_path / "clone" / "pretrained")  # empty
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"not decoded: the made-up weights fail first")
    args = ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out")] + ["-q"] * quiet
    assert cartoonize.main(args) == 2  # the stand-in files are no checkpoint
    err = capfd.readouterr().err
    assert sorted(server.requests) == sorted(FAKE_CONTENT)
    assert ("100%" in err) != quiet
    assert "CC BY-NC-SA 4.0" in err  # the command line prints the library's notice


@pytest.mark.parametrize("command", ["cartoonize", "export", "cartoonize_beam"])
def test_each_command_line_prints_the_licence_itself(server, tmp_path, monkeypatch, capfd,
                                                     caplog, command):
    """With the library's default route (the 'whitebox' logger) silenced, the notice still
    reaches stderr: the command line passes its own `say`."""
    import logging

    from whitebox.cli import cartoonize, cartoonize_beam, export

    monkeypatch.setattr(weights, "PRETRAINED", tmp_path / "clone" / "pretrained")  # empty
    caplog.set_level(logging.ERROR, logger="whitebox")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"not decoded: the made-up weights fail first")
    main, args = {
        "cartoonize": (cartoonize.main, ["-i", str(tmp_path / "in"), "-o", str(tmp_path / "o"),
                                         "-q"]),
        "export": (export.main, ["savedmodel", str(tmp_path / "o")]),
        "cartoonize_beam": (cartoonize_beam.main, ["-i", f"{tmp_path / 'in'}/*", "-o",
                                                   str(tmp_path / "o")])}[command]
    assert main(args) == 2  # the stand-in files are no checkpoint
    err = capfd.readouterr().err
    assert err.count("CC BY-NC-SA 4.0") == 1, err


def test_the_web_page_gives_its_notices_to_its_warn(server, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    from whitebox.serve.web import Engine

    monkeypatch.setattr(weights, "PRETRAINED", tmp_path / "clone" / "pretrained")  # empty
    notices = []
    assert not Engine(warn=notices.append).load()
    assert any("CC BY-NC-SA 4.0" in line for line in notices), notices


# ----------------------------------------------------------------------------- concurrency


CHILD = """
import json, sys, time
from whitebox.infer import weights
weights.OFFICIAL_FILES = json.loads(sys.argv[1])
started = time.time()
open(sys.argv[2], "w").close()  # tell the server this process is running
print(weights.ensure_official_weights(progress=False))
print(started)
"""


def test_two_processes_starting_together_both_succeed(server, tmp_path):
    flags = [tmp_path / "started-0", tmp_path / "started-1"]
    # Keep the first download of the data file in flight until both processes are running.
    server.hold = lambda: all(flag.exists() for flag in flags)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    argv = [sys.executable, "-c", CHILD, json.dumps(FAKE_TABLE)]
    children = [
        subprocess.Popen(
            argv + [str(flag)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for flag in flags
    ]
    results = [child.communicate(timeout=60) for child in children]
    cache = weights.cache_dir()
    starts = []
    for child, (out, err) in zip(children, results):
        assert child.returncode == 0, err
        path, started = out.split()
        assert path == str(cache / "model-33999")
        starts.append(float(started))
    # Both had begun before the data file was first sent, so they really did overlap.
    assert server.data_served_at is not None and max(starts) < server.data_served_at
    for name, data in FAKE_CONTENT.items():
        assert (cache / name).read_bytes() == data
    assert leftovers(cache) == []


def test_pretrained_folder_is_the_repository_one():
    """With no --weights, a checkpoint in the repository's pretrained/ folder is the first
    choice: the path must point there from wherever the module sits in the package."""
    assert weights.PRETRAINED == Path(__file__).resolve().parents[1] / "pretrained"
    assert (weights.PRETRAINED / "README.md").is_file()


def test_a_killed_runs_download_folder_is_removed_by_the_next(server):
    """kill -9 during a download leaves its staging folder in the cache; the next download
    removes it once its lock is gone and it is older than the grace period."""
    from whitebox.base import files

    cache = weights.cache_dir()
    killed = cache / ".download.k1a2b3c4.part"
    killed.mkdir(parents=True)
    (killed / DATA).write_bytes(FAKE_CONTENT[DATA][:1000])
    an_hour_ago = time.time() - 3600
    os.utime(killed, (an_hour_ago, an_hour_ago))
    assert files.PART.fullmatch(killed.name)
    fetch()
    assert leftovers(cache) == []
