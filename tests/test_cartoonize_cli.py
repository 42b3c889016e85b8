"""End-to-end tests of cartoonize.py, in process through main() and once as a subprocess."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import cartoonize
from tests.conftest import REPO


@pytest.fixture
def photos(tmp_path):
    """A folder with two good photos of different sizes."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.jpg"), rng.integers(0, 256, (40, 48, 3), np.uint8))
    cv2.imwrite(str(folder / "b.png"), rng.integers(0, 256, (64, 56, 3), np.uint8))
    return folder


def run(args, weights):
    return cartoonize.main([*args, "--weights", str(weights), "--quiet"])


def test_folder_same_format(tmp_path, photos, tf1_checkpoint):
    out = tmp_path / "out"
    assert run(["-i", str(photos), "-o", str(out)], tf1_checkpoint[0]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]
    assert cv2.imread(str(out / "b.png")).shape == (64, 56, 3)
    assert cv2.imread(str(out / "a.jpg")).shape == (40, 48, 3)


def test_png_format_and_existing_outputs(tmp_path, photos, tf1_checkpoint, capsys):
    out = tmp_path / "out"
    assert run(["-i", str(photos / "a.jpg"), "-o", str(out), "--format", "png"],
               tf1_checkpoint[0]) == 0
    first = (out / "a.png").read_bytes()
    (out / "a.png").write_bytes(b"keep me")
    assert run(["-i", str(photos / "a.jpg"), "-o", str(out), "--format", "png"],
               tf1_checkpoint[0]) == 0
    assert (out / "a.png").read_bytes() == b"keep me"
    assert "exists (use --overwrite)" in capsys.readouterr().err
    assert run(["-i", str(photos / "a.jpg"), "-o", str(out), "--format", "png",
                "--overwrite"], tf1_checkpoint[0]) == 0
    assert (out / "a.png").read_bytes() == first


def test_bad_inputs_are_reported_and_do_not_stop_the_others(tmp_path, photos,
                                                              tf1_checkpoint, capsys):
    good = cv2.imencode(".jpg", np.full((200, 200, 3), 90, np.uint8))[1].tobytes()
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "text.png").write_bytes(b"not an image at all")
    (photos / "cut.jpg").write_bytes(good[: len(good) // 2])
    cv2.imwrite(str(photos / "tiny.png"), np.zeros((6, 30, 3), np.uint8))
    (photos / "notes.txt").write_text("hello")
    out = tmp_path / "out"
    code = run(["-i", str(photos), str(tmp_path / "missing.jpg"), "-o", str(out)],
               tf1_checkpoint[0])
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]
    for name, reason in [("empty.jpg", "empty file"), ("text.png", "not a decodable image"),
                         ("cut.jpg", "truncated JPEG"), ("tiny.png", "too small"),
                         ("missing.jpg", "no such file")]:
        lines = [l for l in err.splitlines() if l.startswith("failed") and name in l]
        assert len(lines) == 1 and reason in lines[0], (name, err)
    assert "skipped" in err and "notes.txt" in err
    assert "done 2, skipped 1, failed 5" in err


def test_refuses_to_overwrite_an_input(tmp_path, photos, tf1_checkpoint, capsys):
    before = (photos / "b.png").read_bytes()
    code = run(["-i", str(photos), "-o", str(photos), "--overwrite"], tf1_checkpoint[0])
    assert code == 1
    assert (photos / "b.png").read_bytes() == before
    assert "would overwrite an input" in capsys.readouterr().err


def test_recursive_mirrors_tree(tmp_path, photos, tf1_checkpoint):
    sub = photos / "deeper" / "still"
    sub.mkdir(parents=True)
    cv2.imwrite(str(sub / "c.png"), np.zeros((16, 16, 3), np.uint8))
    out = tmp_path / "out"
    assert run(["-i", str(photos), "-o", str(out), "-r", "--format", "png"],
               tf1_checkpoint[0]) == 0
    assert (out / "deeper" / "still" / "c.png").is_file()
    assert (out / "a.png").is_file() and (out / "b.png").is_file()
    flat = tmp_path / "flat"
    assert run(["-i", str(photos), "-o", str(flat)], tf1_checkpoint[0]) == 0
    assert not (flat / "deeper").exists()


def test_two_inputs_with_one_output_name(tmp_path, photos, tf1_checkpoint, capsys):
    cv2.imwrite(str(photos / "a.png"), np.zeros((16, 16, 3), np.uint8))
    code = run(["-i", str(photos), "-o", str(tmp_path / "out"), "--format", "png"],
               tf1_checkpoint[0])
    assert code == 1
    assert "is already the output of" in capsys.readouterr().err


def test_no_guided_filter_changes_output(tmp_path, photos, tf1_checkpoint):
    a, b = tmp_path / "with", tmp_path / "without"
    run(["-i", str(photos / "b.png"), "-o", str(a)], tf1_checkpoint[0])
    run(["-i", str(photos / "b.png"), "-o", str(b), "--no-guided-filter"], tf1_checkpoint[0])
    assert not np.array_equal(cv2.imread(str(a / "b.png")), cv2.imread(str(b / "b.png")))


def test_subprocess_exit_codes_and_bad_weights(tmp_path, photos, tf1_checkpoint):
    env = dict(os.environ, WHITEBOX_OFFLINE="1", WHITEBOX_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, str(REPO / "cartoonize.py"), "-i", str(photos), "-o",
           str(tmp_path / "out"), "-q"]
    ok = subprocess.run(cmd + ["-w", str(tf1_checkpoint[0])], env=env, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stderr
    assert "Traceback" not in ok.stderr
    bad = subprocess.run(cmd + ["-w", str(tmp_path / "nowhere")], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and "Traceback" not in bad.stderr


@pytest.fixture
def weights_server(tmp_path, tf1_checkpoint, monkeypatch):
    """A local HTTP server standing in for GitHub, serving the test checkpoint; the cache and
    pretrained/ both start empty. Returns the list of requested paths."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from whitebox import weights
    from whitebox.weights import git_blob_id

    folder = tf1_checkpoint[0]
    requests = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(weights, "OFFICIAL_FILES",
                        {p.name: git_blob_id(p) for p in folder.iterdir()})
    monkeypatch.setenv("WHITEBOX_WEIGHTS_URL", f"http://127.0.0.1:{httpd.server_address[1]}/")
    monkeypatch.setenv("WHITEBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.delenv("WHITEBOX_OFFLINE", raising=False)
    monkeypatch.setattr(cartoonize, "REPO", tmp_path / "clone")  # an empty pretrained/
    yield requests
    httpd.shutdown()
    httpd.server_close()


def test_first_use_downloads_weights_then_reuses_them(tmp_path, photos, weights_server,
                                                      capsys):
    args = ["-i", str(photos), "-o", str(tmp_path / "out"), "-q"]
    assert cartoonize.main(args) == 0
    assert len(weights_server) == 3
    assert "CC BY-NC-SA 4.0" in capsys.readouterr().err
    assert cartoonize.main(args + ["--overwrite"]) == 0
    assert len(weights_server) == 3  # no new request


def test_offline_with_empty_cache_is_a_clear_error(tmp_path, photos, weights_server, capsys):
    code = cartoonize.main(["-i", str(photos), "-o", str(tmp_path / "out"), "--offline"])
    err = capsys.readouterr().err
    assert code == 2 and not weights_server
    assert err.startswith("error:") and "offline" in err and "model-33999.index" in err


def test_every_failure_line_reaches_stderr_and_decoder_noise_does_not(tmp_path, photos,
                                                                      tf1_checkpoint, capfd):
    """Corrupt PNGs make libpng print to fd 2; those lines are silenced, ours are not."""
    good = cv2.imencode(".png", np.random.default_rng(1).integers(0, 256, (32, 32, 3),
                                                                   np.uint8))[1].tobytes()
    start = good.index(b"IDAT") + 8
    corrupt = good[:start] + bytes(64) + good[start + 64:]
    for i in range(6):
        (photos / f"bad{i}.png").write_bytes(corrupt)
    code = run(["-i", str(photos), "-o", str(tmp_path / "out")], tf1_checkpoint[0])
    err = capfd.readouterr().err
    assert code == 1
    failed = [l for l in err.splitlines() if l.startswith("failed")]
    assert sorted(l.split(":")[0].rsplit("/", 1)[1] for l in failed) == [
        f"bad{i}.png" for i in range(6)]
    assert "libpng" not in err
    assert "done 2, skipped 0, failed 6" in err
