"""Nothing leaves the machine and nothing lands outside our cache: real runs of cartoonize.py
(auto: OpenVINO when installed) and export.py onnx with a fresh HOME, watched by strace; and the
private temporary folder every process works in."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from whitebox.base import files, privacy

# What the user's environment may hold that would hide a leak: the switches themselves and
# every variable that moves a dependency's files.
CLEARED = [*privacy.TELEMETRY_OFF, *privacy.CACHE_FOLDERS, "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
           "WHITEBOX_HOME", "GRADIO_TEMP_DIR"]
# A connection or datagram to an internet address, or anything to port 53 (DNS).
NETWORK = re.compile(r"AF_INET6?\b|htons\(53\)")


def _strace():
    """The strace command, or skip saying why it cannot watch a process here."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace (apt-get install strace) to watch for network traffic")
    probe = subprocess.run(["strace", "-f", "-o", os.devnull, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode().strip()}")
    return ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg"]


def _run_stays_local(tmp_path, needs, args, output):
    """Run `python args` in `tmp_path` (which holds in/a.png, a tiny photo) with a fresh empty
    HOME and TMPDIR under strace, skipping without the packages `needs`; check that it made
    `output` and that it wrote nothing under HOME outside our cache, left nothing in TMPDIR
    and made no network connection or DNS lookup. Returns its CompletedProcess."""
    import cv2
    import numpy as np

    for name in needs:
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"needs {name} (see the requirements-*.txt files)")
    home, temp, trace = tmp_path / "home", tmp_path / "tmp", tmp_path / "trace.txt"
    for folder in (home, temp, tmp_path / "in"):
        folder.mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.full((24, 36, 3), 120, np.uint8))
    env = {name: value for name, value in os.environ.items() if name not in CLEARED}
    env.update(HOME=str(home), TMPDIR=str(temp))
    result = subprocess.run([*_strace(), "-o", str(trace), sys.executable, *args], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / output).is_file()
    ours = home / ".cache" / "whitebox-cartoon"
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p != ours and ours not in p.parents and p not in ours.parents) == []
    assert sorted(p.name for p in temp.iterdir()) == []
    assert [line for line in trace.read_text().splitlines() if NETWORK.search(line)] == []
    return result


def test_cartoonize_default_run_stays_local(tmp_path, tf1_checkpoint):
    """The default runtime (OpenVINO when installed) used to write ~/intel/openvino_ga_cid and
    ~/intel/stats, ~/.keras/keras.json and Matplotlib's caches, and to look up Google
    Analytics in DNS."""
    result = _run_stays_local(tmp_path, ["openvino"], [
        str(REPO / "cartoonize.py"), "-i", "in", "-o", "out", "--weights",
        str(tf1_checkpoint[0])], "out/a.png")
    assert "runtime openvino" in result.stdout + result.stderr


def test_export_onnx_stays_local(tmp_path, tf1_checkpoint):
    """export.py onnx used to leave ~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid and
    onnxruntime.db, and ONNX Runtime's session file in TMPDIR."""
    _run_stays_local(tmp_path, ["onnxruntime", "tf2onnx"], [
        str(REPO / "export.py"), "onnx", "m.onnx", "--weights", str(tf1_checkpoint[0])],
        "m.onnx")


def test_local_beam_run_stays_local(tmp_path, tf1_checkpoint):
    """Beam's DirectRunner first tried its Prism runner: a DNS lookup of github.com to fetch
    its binary, and ~/.apache_beam/cache/prism/bin."""
    _run_stays_local(tmp_path, ["apache_beam"], [
        str(REPO / "cartoonize_beam.py"), "--input", "in/*.png", "--output", "out",
        "--runtime", "tf", "--weights", str(tf1_checkpoint[0])], "out/a.png")

# ------------------------------------------------------------------ the private temporary folder

# In a child: make the private folder, write a file there as TensorFlow's AutoGraph does, print
# the folder, then wait to be killed.
HOLD = """\
import sys, tempfile, time
from whitebox.base.files import private_tempdir
folder = private_tempdir()
tempfile.NamedTemporaryFile(prefix="__autograph_generated_file", suffix=".py", delete=False)
print(folder, flush=True)
if sys.argv[1] == "wait":
    time.sleep(600)
"""


def _child(temp, mode):
    """A Python process running HOLD with TMPDIR=`temp`, and the private folder it printed."""
    env = dict(os.environ, TMPDIR=str(temp), PYTHONPATH=str(REPO / "src"))
    process = subprocess.Popen([sys.executable, "-c", HOLD, mode], env=env,
                               stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def _age(folder):
    hour_ago = time.time() - 3600
    os.utime(folder, (hour_ago, hour_ago))


def test_private_folder_goes_at_exit_and_after_kill_at_the_next_start(tmp_path):
    """A process's temporary files (AutoGraph's among them) go with it when it exits; a folder
    a process killed with -9 left is removed by the next process, unless a live one holds it
    or it is not ours."""
    process, folder = _child(tmp_path, "exit")
    process.wait(timeout=60)
    assert os.path.dirname(folder) == str(tmp_path)
    assert files.PRIVATE_NAME.fullmatch(os.path.basename(folder))
    assert list(tmp_path.iterdir()) == []

    killed, killed_folder = _child(tmp_path, "wait")
    alive, alive_folder = _child(tmp_path, "wait")
    try:
        killed.kill()
        killed.wait(timeout=60)
        for path in (killed_folder, alive_folder):
            assert any(name.startswith("__autograph") for name in os.listdir(path))
            _age(path)
        other = tmp_path / "whitebox-notours"
        other.mkdir()
        _age(other)
        process, _ = _child(tmp_path, "exit")
        process.wait(timeout=60)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [os.path.basename(alive_folder), other.name])
    finally:
        alive.kill()
        alive.wait(timeout=60)


def test_a_forked_child_that_exits_leaves_the_folder_to_its_parent(tmp_path):
    code = ("import os, sys\nfrom whitebox.base.files import private_tempdir\n"
            "folder = private_tempdir()\npid = os.fork()\n"
            "if pid == 0:\n    sys.exit(0)\nos.waitpid(pid, 0)\n"
            "print(os.path.isdir(folder), flush=True)\n")
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(REPO / "src"))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr
    assert list(tmp_path.iterdir()) == []

