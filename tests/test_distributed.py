"""tf.distribute runs against the one-device run: mirrored over two logical CPUs, two
workers on the loopback, and a resume across replica counts.

The distributed runs start in subprocesses (tests/distributed_run.py): the CPU can be split
into logical devices only before TensorFlow initialises them. The one-device references run
in this process.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from tests.training_helpers import (
    assert_losses_close,
    assert_same_variables,
    checkpoint_variables,
    tiny_run_folder,
    tiny_train_config,
)
from whitebox.train import training
from whitebox.train.config import TrainConfig, config_from_json

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("distributed_run.py")
LR = TrainConfig().lr
TIMEOUT = 300


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_run_folder(tmp_path_factory.mktemp("dist"), face=False)


def _config(setup, out, **kw):
    return tiny_train_config(setup, out, **kw)


def _one_device(setup, out, **kw):
    folder = setup / out
    if not (folder / "checkpoints").is_dir():
        training.run(_config(setup, out, **kw), echo=False, progress=False)
    return folder


def _subprocess_env(tf_config=None):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def _run_mirrored(setup, out, **kw):
    config = _config(setup, out, strategy="mirrored", devices="/cpu:0,/cpu:1", **kw)
    result = subprocess.run([sys.executable, str(SCRIPT), config.to_json(), "--cpus", "2"],
                            capture_output=True, text=True, timeout=TIMEOUT,
                            env=_subprocess_env())
    assert result.returncode == 0, result.stderr[-3000:]
    return setup / out


@pytest.fixture(scope="module")
def mirrored(setup):
    return _run_mirrored(setup, "mirrored")


def _scalars(folder):
    """{(iteration, name): value} of the run's TensorBoard scalars."""
    values = {}
    for path in sorted(glob.glob(str(folder / "train_log" / "events*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                values[(event.step, v.tag)] = float(tf.make_ndarray(v.tensor))
    return values


def assert_same_run(a, b):
    """Same losses at every iteration (training_helpers.assert_losses_close, 1e-5 of each loss
    or of its share of the objective), and the same checkpoint variables
    (training_helpers.assert_same_variables: exact integers, floats within 1e-5 of each array's
    scale, the generator's Adam-amplified elements within 2 lr)."""
    sa, sb = _scalars(a), _scalars(b)
    assert sa.keys() == sb.keys() and len(sa) >= 20
    weights = config_from_json((a / "config.json").read_text()).active_weights()
    for i in sorted({i for i, _ in sa}):
        assert_losses_close({n: v for (j, n), v in sa.items() if j == i},
                            {n: v for (j, n), v in sb.items() if j == i}, weights,
                            where=f"iteration {i}")
    va, vb = (checkpoint_variables(f / "checkpoints") for f in (a, b))
    assert any(k.startswith("rng/") for k in va) and any("/u/" in k for k in va)
    assert_same_variables(va, vb, LR)


def test_mirrored_two_replicas_equals_one_device(setup, mirrored):
    one = _one_device(setup, "one")
    assert_same_run(one, mirrored)
    saved = config_from_json((mirrored / "config.json").read_text())
    assert saved.strategy == "mirrored" and saved.replicas == 2
    assert "2 replicas, 1 images each" in (mirrored / "log.txt").read_text()


def test_resume_with_one_replica_after_two(setup, mirrored):
    """`train.py train --resume --strategy one` on the run saved by --strategy mirrored
    --devices /cpu:0,/cpu:1: its device list does not bind the resume."""
    import train as train_cli

    straight = _one_device(setup, "one4", iterations=4)
    resumed = setup / "resumed"
    shutil.copytree(mirrored, resumed)
    assert train_cli.main(["train", "--out", str(resumed), "--resume", "--strategy", "one",
                           "--iterations", "4", "--no-progress"]) == 0
    saved = config_from_json((resumed / "config.json").read_text())
    assert saved.replicas == 1 and saved.strategy == "one" and saved.devices == ""
    assert_same_run(straight, resumed)


def _can_isolate_network():
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def test_two_workers_on_loopback_equal_one_device(setup):
    """Two worker processes in a network namespace whose only interface is the loopback
    (TensorFlow's servers bind every interface); ended by PID if they overrun."""
    if not _can_isolate_network():
        pytest.skip("needs unshare -rn and ip (a network namespace holding only the loopback)")
    one = _one_device(setup, "one")
    out = setup / "workers"
    config = _config(setup, "workers", strategy="multiworker").to_json()
    launcher = subprocess.Popen(
        ["unshare", "-rn", sys.executable, str(SCRIPT), config, "--loopback-workers", "2",
         "--timeout", str(TIMEOUT)],
        env=_subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = launcher.communicate(timeout=TIMEOUT + 30)
        assert launcher.returncode == 0, err[-3000:]
    finally:
        if launcher.poll() is None:
            os.kill(launcher.pid, 9)
            launcher.wait()
    assert_same_run(one, out)
    saved = config_from_json((out / "config.json").read_text())
    assert saved.strategy == "multiworker" and saved.replicas == 2
    # Only the chief wrote: one checkpoint series, one log.
    assert len(glob.glob(str(out / "checkpoints" / "*.index"))) == 1


def test_unusable_strategy_settings_are_one_line_errors(monkeypatch):
    from whitebox.train import distribute
    from whitebox.train.config import ConfigError

    with pytest.raises(ConfigError, match="/gpu:7 is not a visible device"):
        distribute.make_strategy("mirrored", "/gpu:7")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG is not set"):
        distribute.make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ConfigError, match="TF_CONFIG: expected"):
        distribute.make_strategy("multiworker")
    workers = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    for task, message in (({"type": "worker", "index": 2}, "task index 2 is out of range"),
                          ({"type": "worker", "index": -1}, "task index -1 is out of range"),
                          ({"type": "chief", "index": 0}, "task type 'chief' has no addresses"),
                          ({"type": "ps", "index": 0}, "TF_CONFIG: expected")):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": workers, "task": task}))
        with pytest.raises(ConfigError, match=message):
            distribute.make_strategy("multiworker")
    assert distribute.make_strategy("one") is tf.distribute.get_strategy()


LONE_WORKER = {"cluster": {"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]},
               "task": {"type": "worker", "index": 0}}


def _lone_worker(setup, tmp_path, *flags):
    """train.py as worker 0 of two, the other never started, alone on a loopback."""
    if not _can_isolate_network():
        pytest.skip("needs unshare -rn and ip (a network namespace holding only the loopback)")
    return ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
            sys.executable, str(REPO / "train.py"), "pretrain", "--data-lists",
            str(setup / "lists"), "--out", str(tmp_path / "run"), "--batch-size", "2",
            "--patch-size", "32", "--iterations", "2", "--no-progress", "--strategy",
            "multiworker", *flags]


def _listening(pid, port):
    """Whether a socket of the network namespace of process `pid` listens on `port`."""
    rows = []
    for table in ("tcp", "tcp6"):
        try:
            rows += Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            pass
    return any(r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A" for r in rows)


def test_a_worker_waiting_for_its_peer_stops_on_ctrl_c(setup, tmp_path):
    from tests.conftest import interrupt_when

    command = _lone_worker(setup, tmp_path)
    process = {}
    code, err = interrupt_when(command, lambda: _listening(process["pid"], 23456),
                               env=_subprocess_env(LONE_WORKER), on_start=process.update)
    assert code == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == ("interrupted: while waiting for worker 1 at "
                                            "127.0.0.1:23457")
    assert "Traceback" not in err


def test_a_worker_whose_peer_never_starts_stops_after_peer_wait(setup, tmp_path):
    result = subprocess.run(_lone_worker(setup, tmp_path, "--peer-wait", "2"),
                            env=_subprocess_env(LONE_WORKER), capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "train.py: error: strategy multiworker: no answer from worker 1 at 127.0.0.1:23457 "
        "within 2 s (--peer-wait)")
    assert not (tmp_path / "run").exists()


def test_a_loss_near_zero_is_compared_at_its_share_of_the_objective():
    """Iteration 3 of the one-device run, and the tv_loss an Intel Xeon with AMX gave for the
    resumed run (1.4e-4 relative, 3.7e-11 absolute): it passes, as 1e4 * 3.7e-11 is 1e-11 of
    g_loss_total; a tv_loss off by half its value, or a g_loss_gray off by 1e-3, does not."""
    one = {"tv_loss": 2.585309e-07, "photo_loss": 0.151651, "superpixel_loss": 0.00936716,
           "recon_loss": 0.161018, "d_loss_gray": 0.490952, "g_loss_gray": 0.99115,
           "d_loss_blur": 0.498407, "g_loss_blur": 0.994411, "d_loss_total": 0.989359,
           "g_loss_total": 33.2968}
    weights = TrainConfig().active_weights()
    assert_losses_close(one, {**one, "tv_loss": 2.58568e-07}, weights)
    for name, value in (("tv_loss", 1.5 * 2.585309e-07), ("g_loss_gray", 0.99215)):
        with pytest.raises(AssertionError, match=name):
            assert_losses_close(one, {**one, name: value}, weights)
