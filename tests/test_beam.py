"""cartoonize_beam.py: the Apache Beam pipeline against cartoonize.py, its dead letters, reruns."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("apache_beam", reason="apache_beam is not installed (pip install -r "
                                          "requirements-beam.txt)")

from apache_beam.io.filesystem import FileMetadata, MatchResult  # noqa: E402
from apache_beam.io.localfilesystem import LocalFileSystem  # noqa: E402

from whitebox.cli import (
    cartoonize,  # noqa: E402
    cartoonize_beam,  # noqa: E402
)
from whitebox.serve import beam  # noqa: E402

from .conftest import REPO, as_from_a_terminal  # noqa: E402


def _write_photos(folder, seed=0):
    """Tiny photos in a nested folder: two of one size (one network call), other sizes, a JPEG,
    a grey-only PGM, and a hidden file that must be ignored."""
    rng = np.random.default_rng(seed)
    sizes = {"a.png": (40, 48), "b.png": (40, 48), "c.jpg": (33, 57),
             "sub/d.png": (64, 24), "sub/deeper/e.bmp": (17, 31), "sub/g.pgm": (24, 24),
             ".hidden/h.png": (16, 16)}
    for name, (h, w) in sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        smooth = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(path), smooth[:, :, 0] if name.endswith(".pgm") else smooth)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _summary(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("done ")]
    assert len(lines) == 1, err
    return lines[0]


def test_outputs_are_byte_identical_to_cartoonize_png(tmp_path, official_weights, capsys):
    photos, ours, theirs = tmp_path / "photos", tmp_path / "beam", tmp_path / "cli"
    _write_photos(photos)
    code = cartoonize_beam.main(["--input", f"{photos}/**", "--output", str(ours),
                                 "--weights", str(official_weights), "--format", "png",
                                 "--direct_running_mode", "multi_processing",
                                 "--direct_num_workers", "2"])
    assert code == 0
    assert _summary(capsys) == "done 6, skipped 0, failed 0"
    assert cartoonize.main(["--input", str(photos), "--recursive", "--output", str(theirs),
                            "--weights", str(official_weights), "--format", "png",
                            "--quiet"]) == 0
    expected = _files(theirs)
    assert expected == ["a.png", "b.png", "c.png", "sub/d.png", "sub/deeper/e.png", "sub/g.png"]
    assert [f for f in _files(ours) if not f.startswith("failed-")] == expected
    for name in expected:
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name
    assert all((ours / f).read_text() == "" for f in _files(ours) if f.startswith("failed-"))


def test_the_shared_flags_give_cartoonize_options(tmp_path):
    """Every flag both command lines take means the same InferenceOptions."""
    flags = ["--max-short-side", "0", "--no-guided-filter", "--precision", "bf16", "--alpha",
             "white", "--max-pixels", "5000", "--runtime", "tf"]
    ours = cartoonize_beam.parse_args(["-i", "x/*", "-o", str(tmp_path / "o")] + flags)[2]
    theirs = cartoonize.parse_args(["-i", "x", "-o", str(tmp_path / "o")] + flags)[1]
    assert ours == theirs and not ours.guided_filter and ours.max_short_side == 0


def test_without_the_guided_filter_too_outputs_are_cartoonize_bytes(tmp_path, tf1_checkpoint):
    photos = tmp_path / "photos"
    _write_photos(photos)
    runs = {}
    for name, extra in {"beam": ["--no-guided-filter"], "beam_filtered": []}.items():
        assert cartoonize_beam.main(["--input", f"{photos}/*.png", "--output",
                                     str(tmp_path / name), "--weights", str(tf1_checkpoint[0]),
                                     "--format", "png", *extra]) == 0
        runs[name] = {n: (tmp_path / name / n).read_bytes() for n in ("a.png", "b.png")}
    assert cartoonize.main(["--input", str(photos / "a.png"), str(photos / "b.png"),
                            "--output", str(tmp_path / "cli"), "--weights",
                            str(tf1_checkpoint[0]), "--no-guided-filter", "--quiet"]) == 0
    for name, data in runs["beam"].items():
        assert data == (tmp_path / "cli" / name).read_bytes(), name
        assert data != runs["beam_filtered"][name], name  # the switch reached the workers


def _dead_letters(folder):
    records = []
    for path in sorted(folder.glob("failed-*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines()]
    return {Path(r["path"]).name: r["reason"] for r in records}


def test_failures_are_dead_letters_and_a_rerun_skips(tmp_path, tf1_checkpoint, capsys,
                                                     monkeypatch):
    weights, _ = tf1_checkpoint
    photos, out = tmp_path / "photos", tmp_path / "out"
    _write_photos(photos)
    (photos / "bad.png").write_bytes((photos / "a.png").read_bytes()[:60])
    (photos / "empty.jpg").write_bytes(b"")
    cv2.imwrite(str(photos / "tiny.png"), np.zeros((5, 7, 3), np.uint8))
    cv2.imwrite(str(photos / "large.png"), np.zeros((50, 50, 3), np.uint8))
    cv2.imwrite(str(photos / "a.jpg"), np.zeros((16, 16, 3), np.uint8))  # a.png, first by name
    (photos / "notes.txt").write_text("not an image")
    out.mkdir()
    (out / "sub").write_text("a file where the folder sub/ should go")
    monkeypatch.setenv("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 30))  # --max-pixels sets it
    argv = ["--input", f"{photos}/**", "--output", str(out), "--weights", str(weights),
            "--format", "png", "--max-pixels", "2000"]

    assert cartoonize_beam.main(argv) == 1
    assert _summary(capsys) == "done 3, skipped 1, failed 8"
    reasons = _dead_letters(out)
    assert reasons.pop("bad.png") == "truncated PNG (no IEND chunk at the end)"
    assert reasons.pop("empty.jpg") == "empty file (0 bytes)"
    assert reasons.pop("tiny.png") == "too small: at least 8x8 pixels needed"
    assert reasons.pop("large.png").startswith("image too large (50 x 50 declared)")
    assert reasons.pop("a.png") == f"output {out / 'a.png'} is already the output of " \
                                   f"{photos / 'a.jpg'}"
    for name in ("d.png", "e.bmp", "g.pgm"):
        assert reasons.pop(name).startswith(f"cannot write {out / 'sub'}"), name
    assert reasons == {}
    written = {name: (out / name).stat().st_mtime_ns for name in ("a.png", "b.png", "c.png")}
    assert sorted(written) == [f for f in _files(out) if f.endswith(".png")]
    assert not [p for p in out.rglob(".*")]  # no temporary file left

    assert cartoonize_beam.main(argv) == 1
    assert _summary(capsys) == "done 0, skipped 4, failed 8"
    assert {name: (out / name).stat().st_mtime_ns for name in written} == written
    assert len(_dead_letters(out)) == 8

    (out / "sub").unlink()
    (photos / "bad.png").unlink()
    assert cartoonize_beam.main([*argv, "--overwrite"]) == 1
    assert _summary(capsys) == "done 6, skipped 1, failed 4"
    assert all((out / name).stat().st_mtime_ns != mtime for name, mtime in written.items())


def test_output_over_an_input_fails(tmp_path, tf1_checkpoint, capsys):
    weights, _ = tf1_checkpoint
    cv2.imwrite(str(tmp_path / "p.png"), np.full((16, 16, 3), 90, np.uint8))
    before = (tmp_path / "p.png").read_bytes()
    code = cartoonize_beam.main(["--input", f"{tmp_path}/*.png", "--output", str(tmp_path),
                                 "--weights", str(weights)])
    assert code == 1
    assert _summary(capsys) == "done 0, skipped 0, failed 1"
    assert _dead_letters(tmp_path) == {
        "p.png": f"output {tmp_path / 'p.png'} would overwrite an input"}
    assert (tmp_path / "p.png").read_bytes() == before


def test_output_through_a_symlink_to_the_input_folder_fails(tmp_path, tf1_checkpoint, capsys):
    """PREFIX a symbolic link to the photos' folder: its outputs are the inputs themselves, and
    --overwrite must not replace them."""
    weights, _ = tf1_checkpoint
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "p.png"), np.full((16, 16, 3), 90, np.uint8))
    before = (photos / "p.png").read_bytes()
    (tmp_path / "link").symlink_to(photos, target_is_directory=True)
    code = cartoonize_beam.main(["--input", f"{photos}/*.png", "--output",
                                 str(tmp_path / "link"), "--weights", str(weights),
                                 "--overwrite"])
    assert code == 1
    assert _summary(capsys) == "done 0, skipped 0, failed 1"
    assert (photos / "p.png").read_bytes() == before


def test_weights_and_usage_errors_exit_2(tmp_path, capsys):
    (tmp_path / "p.png").write_bytes(b"")
    code = cartoonize_beam.main(["--input", f"{tmp_path}/*", "--output", str(tmp_path / "o"),
                                 "--weights", str(tmp_path / "nowhere")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cartoonize_beam.py: error: ") and "nowhere" in err and "\n" not in err
    (tmp_path / "photos").mkdir()
    for argv, words in ([["--input", str(tmp_path / "missing.png")], "no such file"],
                        [["--input", str(tmp_path)], f"'{tmp_path / '**'}'"],
                        [["--input", "x/*", "--runnr", "DirectRunner"], "--runnr"],
                        [["--input", f"{tmp_path}/photos/["], "photos/[: no such file"],
                        [["--input", f"{tmp_path}/*", "--output", str(tmp_path / "p.png" / "o")],
                         f"{tmp_path / 'p.png'} is a file, not a folder"],
                        [["--input", f"{tmp_path}/*", "--precision", "int8", "--runtime", "tf"],
                         "--precision int8 runs on --runtime openvino (or auto) only, not tf"],
                        [["--input", f"{tmp_path}/*", "--precision", "int8", "--runtime",
                          "onnxruntime"], "int8 runs on --runtime openvino (or auto) only"]):
        with pytest.raises(SystemExit) as exit_info:
            cartoonize_beam.main(["--output", str(tmp_path / "o"), *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err


def _beam_command(photos, out, *options):
    """The command line of cartoonize_beam.py on `photos`/* into `out`, TensorFlow in two
    worker processes."""
    return [sys.executable, str(REPO / "cartoonize_beam.py"), "--input", f"{photos}/*",
            "--output", str(out), "--runtime", "tf", "--direct_running_mode",
            "multi_processing", "--direct_num_workers", "2", *options]


def test_a_run_prints_its_own_lines_only_and_cleans_up(tmp_path, tf1_checkpoint):
    """Two worker processes: neither gRPC's, Beam's nor the workers' start-up lines reach the
    terminal; TMPDIR is left as it was, and what a killed run left (its folder in TMPDIR, its
    beam-temp-failed-<id>/ in the output) is removed, while look-alikes of the user stay."""
    photos, out, tmp = tmp_path / "photos", tmp_path / "out", tmp_path / "tmp"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"p{i}.png"), np.full((16, 16, 3), 40 * i, np.uint8))
    killed = out / "beam-temp-failed-3a523276f12c11f1b01702fc00000001"
    (killed / "sub").mkdir(parents=True)
    (killed / "sub" / "partial").write_text("x")
    (out / "beam-temp-failed-mine").mkdir()
    killed_tmp = tmp / "whitebox-abcd1234.tmp"          # a killed run's: unlocked, old
    killed_tmp.mkdir(parents=True)
    os.utime(killed_tmp, (time.time() - 3600,) * 2)
    (tmp / "users-own").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    result = subprocess.run(_beam_command(photos, out, "--weights", str(tf1_checkpoint[0])),
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["runtime tf, precision fp32",
                                          "done 2, skipped 0, failed 0"]
    assert result.stdout == ""
    assert sorted(p.name for p in tmp.iterdir()) == ["users-own"]
    assert sorted(p.name for p in out.iterdir()) == [
        "beam-temp-failed-mine", "failed-00000-of-00001.jsonl", "p0.png", "p1.png"]


def _group_has_workers(pgid):
    """Whether a Beam SDK worker process runs in the process group `pgid`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[2]) == pgid and b"sdk_worker_main" in cmdline:
            return True
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_ctrl_c_with_worker_processes_is_one_line(tmp_path, tf1_checkpoint):
    """Ctrl-C reaches the whole process group, worker processes included: one line, exit 130,
    no worker's traceback."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(200):  # enough work that the pipeline is still running when Ctrl-C comes
        cv2.imwrite(str(photos / f"p{i}.png"), np.full((64, 64, 3), i, np.uint8))
    command = _beam_command(photos, tmp_path / "out", "--weights", str(tf1_checkpoint[0]))
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True, env=dict(os.environ, TMPDIR=str(tmp_path)),
                           preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + 300
    while not _group_has_workers(run.pid) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run.poll() is None, "the pipeline ended before its workers were seen"
    time.sleep(0.5)                          # the workers are starting up
    os.killpg(run.pid, signal.SIGINT)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 130, err
    assert err.splitlines()[0] == "runtime tf, precision fp32"
    assert err.splitlines()[1:] == ["interrupted: outputs already renamed into place are "
                                    "complete; hidden .part files beside them are not"], err


def test_help_imports_neither_tensorflow_nor_beam():
    probe = ("import sys; sys.path.insert(0, 'src')\nfrom whitebox.cli import cartoonize_beam\n"
             "try:\n    cartoonize_beam.parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('tensorflow', 'apache_beam') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert "--direct_num_workers" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


@pytest.mark.parametrize("pattern, base", [
    ("/data/photos/**", "/data/photos/"),
    ("/data/photos/2024-*/*.jpg", "/data/photos/"),
    ("/data/photos/one.jpg", "/data/photos/"),
    ("gs://bucket/raw/**/*.png", "gs://bucket/raw/"),
    ("gs://bucket/x[0-9].png", "gs://bucket/"),
])
def test_pattern_base(pattern, base):
    assert beam.pattern_base(pattern) == base


def test_plan_target_names_as_cartoonize():
    settings = beam.Settings(prefix="gs://out/cartoons", base="gs://in/photos/")
    assert beam.plan_target("gs://in/photos/a/b.JPG", settings) == (
        "gs://out/cartoons/a/b.JPG", None)
    assert beam.plan_target("gs://in/photos/g.pgm", settings) == ("gs://out/cartoons/g.ppm", None)
    png = beam.Settings(prefix="gs://out/cartoons", base="gs://in/photos/", fmt="png")
    assert beam.plan_target("gs://in/photos/a/b.jpg", png) == ("gs://out/cartoons/a/b.png", None)
    assert beam.plan_target("gs://in/photos/.cache/b.jpg", settings) == (None, None)
    assert beam.plan_target("gs://in/photos/notes.txt", settings) == (
        None, "not an image file extension")
    assert beam.plan_target("gs://in/photos/clip.mp4", settings)[0] is None
    inside = beam.Settings(prefix="gs://in/photos/out", base="gs://in/photos/")
    assert beam.plan_target("gs://in/photos/out/a.jpg", inside) == (None, None)
    assert beam.plan_target("gs://in/photos/outer/a.jpg", inside) == (
        "gs://in/photos/out/outer/a.jpg", None)



def test_an_output_named_with_255_bytes_is_written_through_a_shorter_temporary(tmp_path):
    name = "🙂" * 62 + "abc.png"  # 255 bytes, the longest name ext4 takes
    beam.write_via_temporary(str(tmp_path / name), b"cartoon bytes")
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_bytes() == b"cartoon bytes"


class _PrefixedLocal(LocalFileSystem):
    """A remote-looking filesystem for the test: 'whiteboxtest://PATH' is the local PATH."""
    PREFIX = "whiteboxtest://"

    @classmethod
    def scheme(cls):
        return "whiteboxtest"

    def match(self, patterns, limits=None):
        results = super().match([p[len(self.PREFIX):] for p in patterns], limits)
        return [MatchResult(self.PREFIX + r.pattern,
                            [FileMetadata(self.PREFIX + m.path, m.size_in_bytes)
                             for m in r.metadata_list]) for r in results]

    def open(self, path, *args, **kwargs):
        return super().open(path[len(self.PREFIX):], *args, **kwargs)

    def delete(self, paths):
        for path in paths:
            os.remove(path[len(self.PREFIX):])


def test_a_killed_runs_sink_objects_under_a_remote_prefix_are_removed(tmp_path):
    """On an object store the temporary 'folder' is only a name prefix of its objects."""
    killed = tmp_path / "beam-temp-failed-3a523276f12c11f1b01702fc00000001"
    mine = tmp_path / "beam-temp-failed-mine"
    for folder in (killed, mine):
        folder.mkdir()
        (folder / "part").write_text("x")
    removed = beam.remove_stale_sink_folders(f"{_PrefixedLocal.PREFIX}{tmp_path}")
    assert removed == [f"{_PrefixedLocal.PREFIX}{killed / 'part'}"]
    assert not (killed / "part").exists() and (mine / "part").exists()


@pytest.mark.parametrize("as_prefix", [False, True])
def test_remote_weights_are_copied_to_the_worker(tf1_checkpoint, as_prefix):
    from whitebox.base.errors import WeightsError
    from whitebox.infer.weights import load_generator_weights

    folder, values = tf1_checkpoint
    remote = f"{_PrefixedLocal.PREFIX}{folder}" + ("/model-33999" if as_prefix else "")
    staged = beam.stage_weights(remote)
    assert Path(staged).is_dir() != as_prefix and not str(staged).startswith(str(folder))
    generator, _ = load_generator_weights(staged, offline=True, progress=False)
    for name, value in values.items():
        assert np.array_equal(generator.named_variables()[name].numpy(), value), name
    with pytest.raises(WeightsError, match="no checkpoint files there"):
        beam.stage_weights(f"{_PrefixedLocal.PREFIX}{folder}/nothing-here")
