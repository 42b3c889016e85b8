"""The web page (app.py, whitebox.serve.web): its command line, its handling of bad files, and a real
browser (Debian's headless Chromium through Playwright) using it as a person would."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, as_from_a_terminal

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
START_TIMEOUT = 300


def test_without_gradio_one_line_and_exit_2():
    code = ("import runpy, sys; sys.modules['gradio'] = None; sys.argv = ['app.py']; "
            "runpy.run_path('app.py', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr == ("app.py: error: the web page needs Gradio: pip install -r "
                             "requirements-web.txt\n")


def _tiny_photo(path, size=64):
    """A size x size BGR photo (scikit-image's cat, shrunk) written by extension."""
    from whitebox.infer.samples import sample_photo

    image = cv2.resize(sample_photo("chelsea"), (size, size), interpolation=cv2.INTER_AREA)
    assert cv2.imwrite(str(path), image)
    return path


class _HalfCartoonizer:
    """Stands in for inference.Cartoonizer: halves every value, keeps the size."""
    max_short_side = 720

    def cartoonize(self, image):
        return image[: image.shape[0] // 8 * 8, : image.shape[1] // 8 * 8] // 2


class _ReadyEngine:
    def load(self):
        return True

    def cartoonizer(self, resolution, guided_filter, precision):
        return _HalfCartoonizer()


def test_bad_files_get_one_line_each_and_the_others_go_on(tmp_path):
    web = pytest.importorskip("whitebox.serve.web", reason="needs gradio (requirements-web.txt)")
    good = _tiny_photo(tmp_path / "good.png")
    data = good.read_bytes()
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    huge = bytearray(data)
    huge[16:24] = (100000).to_bytes(4, "big") * 2  # PNG header declaring 100000 x 100000
    (tmp_path / "huge.png").write_bytes(bytes(huge))
    (tmp_path / "empty.jpg").write_bytes(b"")
    names = ["notes.jpg", "cut.png", "good.png", "huge.png", "empty.jpg"]
    results = web.Results(tmp_path / "results")
    gallery, downloads, status = web.cartoonize_files(
        _ReadyEngine(), results, [str(tmp_path / n) for n in names], "cap", True, "fp32")
    lines = status.splitlines()
    assert lines[0].startswith("failed notes.jpg: not a decodable image")
    assert lines[1] == "failed cut.png: truncated PNG (no IEND chunk at the end)"
    assert lines[2].startswith("failed huge.png: image too large (100000 x 100000 declared")
    assert lines[3] == "failed empty.jpg: empty file (0 bytes)"
    assert lines[4].startswith("1 of 5 photo(s) cartoonized in ")
    assert len(lines) == 5
    expected = cv2.imencode(".png", cv2.imread(str(good)) // 2)[1].tobytes()
    assert [Path(p).name for p in downloads] == ["good.png"]
    assert Path(downloads[0]).read_bytes() == expected
    assert [caption for _, caption in gallery] == ["good.png: photo", "good.png: cartoon"]


class _FullResolutionEngine(_ReadyEngine):
    def cartoonizer(self, resolution, guided_filter, precision):
        cartoonizer = _HalfCartoonizer()
        cartoonizer.max_short_side = 0 if resolution == "full" else 720
        return cartoonizer


def test_full_resolution_refuses_photos_over_the_page_limit(tmp_path, monkeypatch):
    """A few bytes declaring 16384 x 16384 (under OpenCV's limit) are refused before decoding;
    a photo whose header is not read is refused once decoded; the cap takes both sizes."""
    web = pytest.importorskip("whitebox.serve.web", reason="needs gradio (requirements-web.txt)")
    good = _tiny_photo(tmp_path / "good.png")
    big = bytearray(good.read_bytes())
    big[16:24] = (16384).to_bytes(4, "big") * 2
    (tmp_path / "big.png").write_bytes(bytes(big))
    results = web.Results(tmp_path / "results")

    def status(names, resolution):
        return web.cartoonize_files(_FullResolutionEngine(), results,
                                    [str(tmp_path / n) for n in names], resolution, True,
                                    "fp32")[2].splitlines()

    limit = web.FULL_RESOLUTION_PIXELS
    lines = status(["big.png", "good.png"], "full")
    assert lines[0] == (
        f"failed big.png: too many pixels for full resolution here (16384 x 16384; the page's "
        f"limit is {limit} pixels): choose the 720-pixel cap, or use cartoonize.py "
        f"--max-short-side 0")
    assert lines[1].startswith("1 of 2 photo(s) cartoonized") and len(lines) == 2
    monkeypatch.setattr(web, "FULL_RESOLUTION_PIXELS", 64 * 64 - 1)
    monkeypatch.setattr(web, "declared_size", lambda data: (8, 8))
    assert status(["good.png"], "full")[0].startswith(
        "failed good.png: too many pixels for full resolution here (64 x 64; the page's limit "
        "is 4095 pixels)")
    assert status(["good.png"], "cap")[0].startswith("1 of 1 photo(s) cartoonized")


def test_full_resolution_refuses_formats_whose_header_gives_no_size(tmp_path):
    """A Radiance HDR file (its size is not read from the header) is refused at full resolution
    before decoding, since a few MB of run-length code decode to gigabytes; the cap takes it."""
    web = pytest.importorskip("whitebox.serve.web", reason="needs gradio (requirements-web.txt)")
    _, data = cv2.imencode(".hdr", np.full((64, 64, 3), 0.5, np.float32))
    (tmp_path / "photo.hdr").write_bytes(data.tobytes())
    results = web.Results(tmp_path / "results")

    def status(resolution):
        return web.cartoonize_files(_FullResolutionEngine(), results,
                                    [str(tmp_path / "photo.hdr")], resolution, True, "fp32")[2]

    assert status("full").startswith(
        "failed photo.hdr: full resolution here takes only photos whose header gives their "
        "size (PNG, JPEG, BMP, GIF, WebP, TIFF, PNM, Sun raster): choose the 720-pixel cap")
    assert status("cap").startswith("1 of 1 photo(s) cartoonized")


def test_no_photos_and_missing_weights_are_status_lines(tmp_path):
    web = pytest.importorskip("whitebox.serve.web", reason="needs gradio (requirements-web.txt)")

    class Missing:
        problem = "error: The pretrained weights are not available: offline"

        def load(self):
            return False

    results = web.Results(tmp_path)
    assert web.cartoonize_files(Missing(), results, [], "cap", True, "fp32")[2].startswith(
        "Drop or pick")
    assert web.cartoonize_files(Missing(), results, ["x.png"], "cap", True, "fp32") == (
        [], [], Missing.problem)


def test_uploads_and_gradio_copies_go_with_the_server(tmp_path, monkeypatch):
    """Gradio keeps every upload and a copy of every result in its cache folder (by default
    the system's temporary folder, kept after the server stops): serve() points it into its
    own workspace, which it removes on the way out."""
    web = pytest.importorskip("whitebox.serve.web", reason="needs gradio (requirements-web.txt)")
    from gradio import utils

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    seen = {}

    class Missing:
        problem = "error: no weights"

        def __init__(self, *args):
            pass

        def load(self):
            return False

    def launch(page, **kwargs):
        seen["cache"] = Path(page.GRADIO_CACHE)
        seen["uploads"] = Path(utils.get_upload_folder())
        seen["uploads"].mkdir(parents=True, exist_ok=True)
        (seen["uploads"] / "photo.jpg").write_bytes(b"a user's upload")

    monkeypatch.setattr(web, "Engine", Missing)
    monkeypatch.setattr(web.gr.Blocks, "launch", launch)
    web.serve()
    assert seen["cache"] == seen["uploads"]
    assert seen["uploads"].parent.name.startswith("whitebox-web-")
    assert not seen["uploads"].exists()
    assert "GRADIO_TEMP_DIR" not in os.environ


# ------------------------------------------------------------------ in a real browser


def _chromium():
    """The path of Debian's chromium, or skip saying what is missing."""
    pytest.importorskip("gradio", reason="needs gradio (pip install -r requirements-web.txt)")
    pytest.importorskip("playwright.sync_api",
                        reason="needs playwright (pip install -r requirements-web.txt)")
    path = os.environ.get("WHITEBOX_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.skip("needs Chromium (apt-get install chromium) for the browser test")
    return path


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


class App:
    """app.py in a subprocess on a free loopback port, its own temporary and cache folders."""

    def __init__(self, folder, *args):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = folder / "app.log"
        temp = folder / "tmp"
        temp.mkdir(exist_ok=True)
        env = dict(os.environ, TMPDIR=str(temp), WHITEBOX_HOME=str(folder / "home"))
        env.pop("GRADIO_TEMP_DIR", None)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / "app.py"), "--port", str(self.port), "--offline",
                 *args], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=as_from_a_terminal)

    def wait(self):
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"app.py did not start:\n{self.log.read_text()}")
            time.sleep(1)

    def stop(self):
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


def test_sigterm_stops_the_server_and_removes_its_workspace(tmp_path):
    """A service manager stops a server with SIGTERM: the workspace (uploads, results) and
    Gradio's own state (vibe_edit_history) go as they do on Ctrl-C; nothing stays in TMPDIR."""
    pytest.importorskip("gradio", reason="needs gradio (requirements-web.txt)")
    app = App(tmp_path, "--weights", str(tmp_path / "none"))
    try:
        app.wait()
        assert list((tmp_path / "tmp").rglob("whitebox-web-*"))
        os.kill(app.process.pid, signal.SIGTERM)
        app.process.wait(timeout=20)
    finally:
        app.stop()
    assert list((tmp_path / "tmp").iterdir()) == [], app.log.read_text()


def test_a_killed_servers_workspace_is_removed_by_the_next_start(tmp_path):
    """kill -9 leaves the uploads behind; the next app.py removes them (their lock went with
    the killed process) and works in its own folder."""
    pytest.importorskip("gradio", reason="needs gradio (requirements-web.txt)")
    killed = App(tmp_path, "--weights", "none")
    try:
        killed.wait()
        (workspace,) = (tmp_path / "tmp").rglob("whitebox-web-*")
        os.kill(killed.process.pid, signal.SIGKILL)
        killed.process.wait(timeout=20)
    finally:
        killed.stop()
    private = workspace.parent
    hour_ago = time.time() - 3600
    os.utime(private, (hour_ago, hour_ago))
    later = App(tmp_path, "--weights", "none")
    try:
        later.wait()
        assert not private.exists()
        assert len(list((tmp_path / "tmp").rglob("whitebox-web-*"))) == 1
    finally:
        later.stop()


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                              args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def app(browser, official_weights, tmp_path_factory):
    server = App(tmp_path_factory.mktemp("app"), "--weights", str(official_weights))
    try:
        server.wait()
        yield server
    finally:
        server.stop()


def _open(browser, url):
    """A fresh page on `url`; every request to a host other than the loopback address is
    appended to the returned list."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280,
                                                                   "height": 900})
    page = context.new_page()
    outside = []
    page.on("request", lambda r: urlparse(r.url).hostname not in ("127.0.0.1", None)
            and outside.append(r.url))
    page.goto(url)
    page.wait_for_selector("#run")
    return page, outside


def _upload_and_run(page, paths, done):
    """Drop `paths` on the photo box, press Cartoonize, wait until the status says `done`."""
    page.locator("#photos input[type=file]").set_input_files([str(p) for p in paths])
    page.wait_for_function(f"document.querySelectorAll('#photos a[download]').length == "
                           f"{len(paths)}", timeout=60_000)
    page.click("#run")
    page.wait_for_function(f"document.querySelector('#status textarea').value.includes("
                           f"{done!r})", timeout=300_000)
    return page.locator("#status textarea").input_value()


def test_browser_download_is_cartoonize_py_png(app, browser, official_weights, tmp_path):
    photo = _tiny_photo(tmp_path / "cat.jpg")
    page, outside = _open(browser, app.url)
    status = _upload_and_run(page, [photo], "cartoonized")
    assert status.startswith("1 of 1 photo(s) cartoonized in "), status
    with page.expect_download() as info:
        page.click("#downloads a[download]")
    download = tmp_path / "downloaded.png"
    info.value.save_as(download)
    page.screenshot(path=str(tmp_path / "web.png"), full_page=True)
    assert (tmp_path / "web.png").stat().st_size > 0
    assert info.value.suggested_filename == "cat.png"
    result = subprocess.run(
        [sys.executable, str(REPO / "cartoonize.py"), "--input", str(photo), "--output",
         str(tmp_path / "cli"), "--format", "png", "--weights", str(official_weights), "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert download.read_bytes() == (tmp_path / "cli" / "cat.png").read_bytes()
    assert outside == []
    page.context.close()


def test_browser_non_image_is_one_line_and_the_server_goes_on(app, browser, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("a text file, renamed\n")
    page, outside = _open(browser, app.url)
    status = _upload_and_run(page, [fake], "cartoonized")
    assert status.splitlines() == [
        "failed notes.jpg: not a decodable image (corrupt, or a format OpenCV cannot read)",
        status.splitlines()[1]]
    assert status.splitlines()[1].startswith("0 of 1 photo(s) cartoonized")
    assert app.process.poll() is None
    assert _answers(app.url)
    page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
    assert outside == []
    page.context.close()


def test_browser_missing_weights_show_the_instructions(browser, tmp_path):
    from whitebox.infer.weights import PRETRAINED
    from whitebox.model.checkpoints import CheckpointError, resolve_prefix

    try:
        resolve_prefix(PRETRAINED)
        pytest.skip(f"{PRETRAINED} holds a checkpoint, so the weights are never missing")
    except CheckpointError:
        pass
    server = App(tmp_path)
    try:
        server.wait()
        page, _ = _open(browser, server.url)
        page.wait_for_function("document.querySelector('#status textarea').value != ''")
        shown = page.locator("#status textarea").input_value()
        assert shown.startswith("error: The pretrained White-box Cartoonization weights are "
                                "not available")
        assert "model-33999.index" in shown and str(tmp_path / "home") in shown
        page.context.close()
    finally:
        server.stop()
    assert "not available" in server.log.read_text()
