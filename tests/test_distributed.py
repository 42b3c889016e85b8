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

import numpy as np
import pytest
import tensorflow as tf

from whitebox import training
from whitebox.config import TrainConfig, config_from_json
from tests.training_helpers import tiny_run_folder, tiny_train_config

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


def _variables(folder):
    prefix = tf.train.latest_checkpoint(str(folder / "checkpoints"))
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _scalars(folder):
    """{(iteration, name): value} of the run's TensorBoard scalars."""
    values = {}
    for path in sorted(glob.glob(str(folder / "train_log" / "events*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                values[(event.step, v.tag)] = float(tf.make_ndarray(v.tensor))
    return values


def assert_same_run(a, b):
    """Same losses (1e-5 relative), same colour-shift RNG state and counters (exactly), the
    discriminators, spectral-norm vectors and Adam slots within 1e-5 of each array's scale, and
    the generator likewise except where Adam's epsilon amplifies a reordered sum (see README)."""
    sa, sb = _scalars(a), _scalars(b)
    assert sa.keys() == sb.keys() and len(sa) >= 20
    for key in sa:
        np.testing.assert_allclose(sb[key], sa[key], rtol=1e-5, err_msg=str(key))
    va, vb = _variables(a), _variables(b)
    assert va.keys() == vb.keys()
    generator_off = generator_size = 0
    assert any(k.startswith("rng/") for k in va) and any("/u/" in k for k in va)
    for key, x in va.items():
        y = vb[key]
        if x.dtype.kind != "f":
            np.testing.assert_array_equal(x, y, err_msg=key)      # rng state, steps, iteration
            continue
        diff = np.abs(x - y)
        scale = np.abs(x).max()
        if key.startswith("generator/"):
            # Elements whose gradient is near Adam's epsilon: a float sum taken in another
            # order moves their step by up to one learning rate. They are rare.
            generator_off += int(np.sum(diff > 1e-5 * scale))
            generator_size += x.size
            assert diff.max() <= 2 * LR, key
        else:
            assert diff.max() <= 1e-5 * scale, (key, diff.max(), scale)
    assert generator_size > 0 and generator_off <= 1e-3 * generator_size, generator_off


def test_mirrored_two_replicas_equals_one_device(setup, mirrored):
    one = _one_device(setup, "one")
    assert_same_run(one, mirrored)
    saved = config_from_json((mirrored / "config.json").read_text())
    assert saved.strategy == "mirrored" and saved.replicas == 2
    assert "2 replicas, 1 images each" in (mirrored / "log.txt").read_text()


def test_resume_with_one_replica_after_two(setup, mirrored):
    straight = _one_device(setup, "one4", iterations=4)
    resumed = setup / "resumed"
    shutil.copytree(mirrored, resumed)
    training.run(_config(setup, "resumed", iterations=4, resume=True), echo=False,
                 progress=False)
    assert config_from_json((resumed / "config.json").read_text()).replicas == 1
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
    from whitebox import distribute
    from whitebox.config import ConfigError

    with pytest.raises(ConfigError, match="/gpu:7 is not a visible device"):
        distribute.make_strategy("mirrored", "/gpu:7")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG is not set"):
        distribute.make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(ConfigError, match="TF_CONFIG: expected"):
        distribute.make_strategy("multiworker")
    assert distribute.make_strategy("one") is None
