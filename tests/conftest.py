"""Fixtures shared by the test modules: the ../shared folder and small checkpoints."""
import signal
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts):
    """A path under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared folder), which is absent here")
    return path


@pytest.fixture
def plain_cpu(monkeypatch):
    """Pretend this is a CPU without bfloat16 instructions and there is no GPU."""
    from whitebox.model import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.setattr(precision, "gpu_compute_capabilities", list)


def write_tf1_checkpoint(prefix, variables):
    """Write {name: array} as a TF1 checkpoint with tf.compat.v1.train.Saver, as the
    authors' code did; returns the prefix."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf_vars = [tf.compat.v1.Variable(value, name=name) for name, value in variables.items()]
        saver = tf.compat.v1.train.Saver(var_list=tf_vars)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, str(prefix), write_meta_graph=False)
    return str(prefix)


def random_generator_values(seed=0, scale=0.05):
    """{official name: random float32 array} for every generator variable."""
    from whitebox.model.network import Generator

    rng = np.random.default_rng(seed)
    return {name: (rng.standard_normal(var.shape.as_list()) * scale).astype(np.float32)
            for name, var in Generator().named_variables().items()}


@pytest.fixture(scope="session")
def random_generator():
    """A network.Generator holding `random_generator_values()`."""
    from whitebox.model.network import Generator

    gen = Generator()
    values = random_generator_values()
    for name, var in gen.named_variables().items():
        var.assign(values[name])
    return gen


# How long a child may take to stop once sent Ctrl-C.
STOP_SECONDS = 120


def as_from_a_terminal():
    """For `preexec_fn`: in the child, before it runs, SIGINT at its default action and
    unblocked, as a shell starts a command (whatever earlier tests left in this process)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def _signal_state(pid):
    """The SigBlk/SigIgn/SigCgt lines of /proc/PID/status, to explain a process that did not
    stop on SIGINT."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "(no /proc status)"
    return "; ".join(line for line in lines if line.startswith(("SigBlk", "SigIgn", "SigCgt")))


def interrupt_when(command, ready, env=None, timeout=240, on_start=None):
    """Run `command` as a terminal would (SIGINT delivered, stdout discarded), send it Ctrl-C
    once `ready()` is true, and return (exit code, stderr). Fails if it ends before that, if
    `ready` stays false for `timeout` seconds, or if it still runs STOP_SECONDS after Ctrl-C:
    then with its signal state and, from SIGABRT and Python's fault handler, every thread's
    stack. The process is killed in any case. on_start: called with {"pid": PID} once it
    runs."""
    import os
    import subprocess
    import time

    env = dict(os.environ if env is None else env, PYTHONFAULTHANDLER="1")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_terminal)
    if on_start is not None:
        on_start({"pid": process.pid})
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None and time.monotonic() < deadline, "never ready"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            state = _signal_state(process.pid)
            process.send_signal(signal.SIGABRT)
            try:
                _, err = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                err = "(no stacks: still running 60 s after SIGABRT)"
            pytest.fail(f"still running {STOP_SECONDS} s after SIGINT ({state}); stderr:\n{err}")
    finally:
        process.kill()
    return process.returncode, err


@pytest.fixture(scope="session")
def tf1_checkpoint(tmp_path_factory):
    """A folder laid out like the authors' saved_models/ with random generator weights.

    Returns (folder, {name: array})."""
    folder = tmp_path_factory.mktemp("saved_models")
    values = random_generator_values()
    write_tf1_checkpoint(folder / "model-33999", values)
    return folder, values


@pytest.fixture(scope="session")
def official_weights():
    """The authors' generator rebuilt in ../shared/weights/whitebox_official."""
    return shared_path("weights", "whitebox_official")


@pytest.fixture(scope="session", autouse=True)
def runtime_cache(tmp_path_factory):
    """Models converted for OpenVINO / ONNX Runtime go to a folder of this session, not the
    user's cache. Returns that folder."""
    from whitebox.infer import runtimes

    folder = tmp_path_factory.mktemp("runtimes")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtimes, "cache_root", lambda: folder)
        yield folder


@pytest.fixture(autouse=True)
def sigint_handler_restored():
    """A command line's main() called in this process ignores SIGINT once it has reported a
    Ctrl-C (so a second one cannot print a traceback while it exits), and some libraries block
    signals in the thread that loads them. The handler and this thread's signal mask are put
    back after each test: both would be inherited by every later subprocess."""
    handler = signal.getsignal(signal.SIGINT)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    yield
    signal.signal(signal.SIGINT, handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
