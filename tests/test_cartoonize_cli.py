"""End-to-end tests of cartoonize.py, in process through main() and once as a subprocess."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, interrupt_when
from whitebox.cli import cartoonize


@pytest.fixture
def photos(tmp_path):
    """A folder with two good photos of different sizes."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a.jpg"), rng.integers(0, 256, (40, 48, 3), np.uint8))
    cv2.imwrite(str(folder / "b.png"), rng.integers(0, 256, (64, 56, 3), np.uint8))
    return folder


def run(args, weights, quiet=True):
    return cartoonize.main([*args, "--weights", str(weights), *(["--quiet"] if quiet else [])])


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
               tf1_checkpoint[0], quiet=False) == 0
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
               tf1_checkpoint[0], quiet=False)
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


def test_quiet_prints_only_the_failures_and_the_summary(tmp_path, photos, tf1_checkpoint,
                                                        capsys, monkeypatch):
    from whitebox.infer import runtimes

    monkeypatch.setattr(runtimes, "cache_root", lambda: tmp_path / "cache")  # a first run
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"an earlier output")
    (out / ".b.png.q1w2e3r4.part").write_bytes(b"left by a killed run")
    (photos / "notes.txt").write_text("not an image")
    (photos / "bad.png").write_bytes(b"not an image either")
    cv2.imwrite(str(photos / "g.pgm"), np.full((16, 16), 90, np.uint8))
    assert run(["-i", str(photos), "-o", str(out)], tf1_checkpoint[0]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0] == f"failed {photos / 'bad.png'}: not a decodable image (corrupt, or a " \
                       f"format OpenCV cannot read)"
    assert lines[1].startswith("done 2, skipped 2, failed 1 in ")
    (out / "a.jpg").write_bytes(b"an earlier output")
    (out / ".b.png.q1w2e3r4.part").write_bytes(b"left by a killed run")
    assert run(["-i", str(photos), "-o", str(out), "--overwrite"], tf1_checkpoint[0],
               quiet=False) == 1
    err = capsys.readouterr().err
    for line in ["runtime ", "removed ", "skipped ", f"{photos / 'g.pgm'}: written as"]:
        assert line in err, (line, err)


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
    assert bad.stderr.startswith("cartoonize.py: error:") and "Traceback" not in bad.stderr
    no_index = tmp_path / "no_index"  # a state file naming a checkpoint that is not there
    no_index.mkdir()
    (no_index / "checkpoint").write_text('model_checkpoint_path: "model-5"\n')
    bad = subprocess.run(cmd + ["-w", str(no_index)], env=env, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr == (f"cartoonize.py: error: {no_index}: no checkpoint here (no "
                          f"'*.index' file)\n")


@pytest.fixture
def weights_server(tmp_path, tf1_checkpoint, monkeypatch):
    """A local HTTP server standing in for GitHub, serving the test checkpoint; the cache and
    pretrained/ both start empty. Returns the list of requested paths."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from whitebox.infer import weights
    from whitebox.infer.weights import git_blob_id

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
    monkeypatch.setattr(weights, "PRETRAINED", tmp_path / "clone" / "pretrained")  # empty
    yield requests
    httpd.shutdown()
    httpd.server_close()


def test_first_use_downloads_weights_then_reuses_them(tmp_path, photos, weights_server,
                                                      capsys):
    args = ["-i", str(photos), "-o", str(tmp_path / "out"), "-q"]
    assert cartoonize.main(args) == 0
    assert len(weights_server) == 3
    err = capsys.readouterr().err
    assert "CC BY-NC-SA 4.0" in err and "%|" not in err  # --quiet: no download bar either
    assert cartoonize.main(args + ["--overwrite"]) == 0
    assert len(weights_server) == 3  # no new request


def test_offline_with_empty_cache_is_a_clear_error(tmp_path, photos, weights_server, capsys):
    code = cartoonize.main(["-i", str(photos), "-o", str(tmp_path / "out"), "--offline"])
    err = capsys.readouterr().err
    assert code == 2 and not weights_server
    assert err.startswith("cartoonize.py: error:") and "offline" in err and "model-33999.index" in err


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


def test_oversized_header_fails_alone_and_the_run_goes_on(tmp_path, photos, tf1_checkpoint,
                                                         capsys, monkeypatch):
    from tests.test_image_io import png_header_only

    monkeypatch.delenv("OPENCV_IO_MAX_IMAGE_PIXELS", raising=False)
    (photos / "0huge.png").write_bytes(png_header_only(40000, 40000))  # sorted first
    out = tmp_path / "out"
    assert run(["-i", str(photos), "-o", str(out)], tf1_checkpoint[0]) == 1
    err = capsys.readouterr().err
    assert f"failed {photos / '0huge.png'}: image too large (40000 x 40000 declared)" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png"]
    assert "done 2, skipped 0, failed 1" in err and "Traceback" not in err


def test_max_pixels_lowers_the_limit(tmp_path, photos, tf1_checkpoint, capsys, monkeypatch):
    monkeypatch.setenv("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 30))  # restored afterwards
    out = tmp_path / "out"
    assert run(["-i", str(photos), "-o", str(out), "--max-pixels", "3000"],
               tf1_checkpoint[0]) == 1
    err = capsys.readouterr().err
    assert "b.png: image too large (56 x 64 declared); the limit is 3000 pixels" in err
    assert [p.name for p in out.iterdir()] == ["a.jpg"]


def test_max_pixels_raises_the_limit_opencv_loads_with(tmp_path, photos, tf1_checkpoint):
    """OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS once, when loaded: --max-pixels must get there
    first, so that 1920- and 3584-pixel images decode although the environment says 1000."""
    cv2.imwrite(str(photos / "c.png"), np.zeros((80, 80, 3), np.uint8))
    env = dict(os.environ, OPENCV_IO_MAX_IMAGE_PIXELS="1000", WHITEBOX_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, str(REPO / "cartoonize.py"), "-i", str(photos), "-o",
         str(tmp_path / "out"), "-q", "-w", str(tf1_checkpoint[0]), "--max-pixels", "5000"],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "c.png: image too large (80 x 80 declared); the limit is 5000 pixels" in result.stderr
    assert "done 2, skipped 0, failed 1" in result.stderr


@pytest.mark.parametrize("ext", [".pgm", ".pbm"])
def test_grey_only_format_is_written_as_ppm(tmp_path, tf1_checkpoint, capfd, ext):
    folder = tmp_path / "in"
    folder.mkdir()
    grey = np.random.default_rng(2).integers(0, 256, (24, 32), np.uint8)
    cv2.imwrite(str(folder / f"g{ext}"), grey if ext == ".pgm" else (grey > 127) * np.uint8(255))
    out = tmp_path / "out"
    assert run(["-i", str(folder), "-o", str(out)], tf1_checkpoint[0], quiet=False) == 0
    err = capfd.readouterr().err
    assert [p.name for p in out.iterdir()] == ["g.ppm"]
    result = cv2.imread(str(out / "g.ppm"), cv2.IMREAD_UNCHANGED)
    assert result.shape == (24, 32, 3) and not (result[..., 0] == result[..., 1]).all()
    lines = [line for line in err.splitlines() if f"g{ext}" in line]
    assert len(lines) == 1 and f"written as {out / 'g.ppm'}" in lines[0], err
    assert "ERROR" not in err and "imencode" not in err
    # a second run sees the real target and skips it
    assert run(["-i", str(folder), "-o", str(out)], tf1_checkpoint[0], quiet=False) == 0
    assert f"output {out / 'g.ppm'} exists" in capfd.readouterr().err


def test_names_with_control_characters_are_printed_on_one_line(tmp_path, photos,
                                                               tf1_checkpoint, capsys):
    (photos / "bad\nname.png").write_bytes(b"not an image")
    (photos / "tab\there.txt").write_text("x")
    (photos / "ok\r.png").write_bytes((photos / "b.png").read_bytes())
    out = tmp_path / "out"
    assert run(["-i", str(photos), "-o", str(out)], tf1_checkpoint[0], quiet=False) == 1
    err = capsys.readouterr().err
    assert (out / "ok\r.png").is_file()
    assert f"failed {photos}/bad\\nname.png: not a decodable image" in err
    assert f"skipped {photos}/tab\\there.txt: not an image file extension" in err
    assert "ok\r" not in err and "name.png" not in err.replace("bad\\nname.png", "")
    assert "done 3, skipped 1, failed 1" in err


def test_stale_temporary_files_are_removed_and_others_kept(tmp_path, photos, tf1_checkpoint,
                                                          capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a.jpg.q1w2e3r4.part"
    stale.write_bytes(b"complete bytes of a run killed at the rename")
    keep = [out / ".notes.txt.q1w2e3r4.part", out / "mine.part", out / ".hidden"]
    for path in keep:
        path.write_bytes(b"user file")
    assert run(["-i", str(photos), "-o", str(out)], tf1_checkpoint[0], quiet=False) == 0
    err = capsys.readouterr().err
    assert not stale.exists()
    assert f"removed {stale}: a temporary file left by an interrupted run" in err
    assert all(path.read_bytes() == b"user file" for path in keep)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "a.jpg", "b.png", "mine.part"]


def test_an_input_named_with_255_bytes_keeps_its_name(tmp_path, photos, tf1_checkpoint):
    name = "é" * 125 + "x.png"  # 255 bytes in UTF-8, the longest name ext4 takes
    (photos / name).write_bytes((photos / "b.png").read_bytes())
    out = tmp_path / "out"
    assert run(["-i", str(photos / name), "-o", str(out)], tf1_checkpoint[0]) == 0
    assert os.listdir(out) == [name]
    cartoon = cv2.imdecode(np.frombuffer((out / name).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert cartoon.shape == (64, 56, 3)


def test_max_short_side_below_8_is_a_usage_error(tmp_path, photos, tf1_checkpoint, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(["-i", str(photos), "-o", str(tmp_path / "out"), "--max-short-side", "4"],
            tf1_checkpoint[0])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert "--max-short-side 4 would shrink every image it resizes below the 8x8" in err
    assert not (tmp_path / "out").exists()
    assert run(["-i", str(photos), "-o", str(tmp_path / "out"), "--max-short-side", "8"],
               tf1_checkpoint[0]) == 0
    assert cv2.imread(str(tmp_path / "out" / "a.jpg")).shape == (8, 8, 3)


@pytest.mark.parametrize("below", ["", "sub"])
def test_output_that_is_a_file_is_a_usage_error(tmp_path, photos, tf1_checkpoint, capsys,
                                                below):
    target = tmp_path / "taken.png"
    target.write_bytes(b"a file the user placed")
    with pytest.raises(SystemExit) as exit_:
        run(["-i", str(photos), "-o", str(target / below)], tf1_checkpoint[0])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1, err
    assert f"{target} is a file, not a folder" in err
    assert target.read_bytes() == b"a file the user placed"


def test_ctrl_c_prints_the_summary_and_exits_130(tmp_path, tf1_checkpoint):
    """A real SIGINT once the first output exists: summary, exit 130, no traceback, no
    temporary file, and every output that exists is complete."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for k in range(150):
        cv2.imwrite(str(folder / f"{k:03d}.png"), rng.integers(0, 256, (64, 64, 3), np.uint8))
    out = tmp_path / "out"
    env = dict(os.environ, WHITEBOX_OFFLINE="1")
    code, err = interrupt_when(
        [sys.executable, str(REPO / "cartoonize.py"), "-i", str(folder), "-o", str(out), "-q",
         "-w", str(tf1_checkpoint[0])], lambda: out.is_dir() and any(out.glob("*.png")), env)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    written = sorted(out.iterdir())
    assert 0 < len(written) < 150 and all(p.suffix == ".png" for p in written)
    assert all(cv2.imread(str(p)).shape == (64, 64, 3) for p in written)
    lines = err.splitlines()
    assert lines[-2] == f"interrupted: {150 - len(written)} input(s) not processed"
    assert lines[-1].startswith(f"done {len(written)}, skipped 0, failed 0 in ")


def test_run_plan_stops_on_ctrl_c_with_the_summary_and_callers_stop_too(tmp_path, photos,
                                                                       capsys):
    """In process: Ctrl-C inside the generator call of the second image; the first output is
    complete, nothing else is written, and batch.Interrupted carries the summary."""
    from whitebox.cli import say
    from whitebox.infer.batch import Interrupted, plan_jobs, run_plan

    cv2.imwrite(str(photos / "c.png"), np.zeros((16, 16, 3), np.uint8))
    calls = []

    def cartoonize_then_interrupt(image):
        calls.append(image.shape)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return image

    out = tmp_path / "out"
    plan = plan_jobs([photos], out)
    with pytest.raises(Interrupted) as stop:
        run_plan(plan, cartoonize_then_interrupt, say, progress=False)
    assert stop.value.args[0]["done"] == 1 and stop.value.args[0]["failed"] == 0
    assert [p.name for p in out.iterdir()] == ["a.jpg"]
    assert cv2.imread(str(out / "a.jpg")).shape == (40, 48, 3)
    last = capsys.readouterr().err.splitlines()[-2:]
    assert last[0] == "interrupted: 2 input(s) not processed"
    assert last[1].startswith("done 1, skipped 0, failed 0 in ")


@pytest.mark.parametrize("flag, compiled", [([], False), (["--xla"], True)])
def test_xla_is_a_plain_flag_off_by_default(tmp_path, photos, tf1_checkpoint, monkeypatch,
                                            flag, compiled):
    from whitebox.infer import loader

    made = []
    real = loader.TFRunner
    monkeypatch.setattr(loader, "TFRunner",
                        lambda *a, **k: made.append(k["jit_compile"]) or real(*a, **k))
    assert run(["-i", str(photos / "a.jpg"), "-o", str(tmp_path / "out"), "--runtime", "tf",
                *flag], tf1_checkpoint[0]) == 0
    assert made == [compiled]
    assert cv2.imread(str(tmp_path / "out" / "a.jpg")).shape == (40, 48, 3)


def test_folders_take_the_one_extension_set_and_named_files_any(tmp_path, tf1_checkpoint,
                                                                capsys):
    from tests.test_image_io import mixed_folder

    folder = mixed_folder(tmp_path / "in")
    out = tmp_path / "out"
    assert run(["-i", str(folder), "-o", str(out)], tf1_checkpoint[0], quiet=False) == 0
    err = capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.ppm", "c.gif"]
    assert cv2.imread(str(out / "c.gif")).shape == (32, 32, 3)
    assert f"skipped {folder}/d.img: not an image file extension" in err
    assert "hidden" not in err and "done 3, skipped 2, failed 0" in err
    # a file named on its own is decoded whatever its extension
    assert run(["-i", str(folder / "d.img"), "-o", str(out), "--format", "png"],
               tf1_checkpoint[0]) == 0
    assert cv2.imread(str(out / "d.png")).shape == (32, 32, 3)


def test_unreadable_input_folder_fails_alone(tmp_path, photos, tf1_checkpoint, capsys,
                                             monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    listdir = os.listdir

    def refuse(path="."):  # as for a folder without read permission (root would read it)
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", refuse)
    assert run(["-i", str(locked), str(photos), "-o", str(tmp_path / "out")],
               tf1_checkpoint[0]) == 1
    err = capsys.readouterr().err
    assert f"failed {locked}: unreadable folder (Permission denied)" in err
    assert "done 2, skipped 0, failed 1" in err


def test_stale_video_temporary_files_are_removed_too(tmp_path, photos, tf1_checkpoint, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".clip.mp4.q1w2e3r4.part"
    stale.write_bytes(b"half a video from a killed run")
    assert run(["-i", str(photos), "-o", str(out)], tf1_checkpoint[0], quiet=False) == 0
    assert not stale.exists()
    assert f"removed {stale}: a temporary file left by an interrupted run" in capsys.readouterr().err
