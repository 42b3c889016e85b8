"""Runs one training run in a fresh process (the distributed tests start it as a subprocess).

    python tests/distributed_run.py CONFIG_JSON [--cpus N]
    unshare -rn python tests/distributed_run.py CONFIG_JSON --loopback-workers N

CONFIG_JSON: TrainConfig/PretrainConfig fields as a JSON object with "command". --cpus splits
the CPU into N logical devices (/cpu:0 ... /cpu:N-1), which TensorFlow allows only before it
first initialises its devices, hence the separate process. TF_CONFIG (multi-worker) is read
from the environment. Prints "done" on success.

--loopback-workers N starts N workers of a multi-worker run on 127.0.0.1 (TF_CONFIG with free
ports) and waits for them (at most --timeout seconds, then ends them by PID). TensorFlow's
servers listen on every interface; run it in a network namespace of its own (unshare -rn), where
the loopback is the only one, and this script brings it up.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--cpus", type=int, default=1)
    parser.add_argument("--loopback-workers", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    if args.loopback_workers:
        sys.exit(run_workers(args.config, args.loopback_workers, args.timeout))

    from whitebox.base.quiet_tf import import_tensorflow
    tf = import_tensorflow()
    if args.cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpus)
    from whitebox.train import training
    from whitebox.train.config import config_from_json

    training.run(config_from_json(args.config), echo=False, progress=False)
    print("done")


def run_workers(config, n, timeout):
    """Start n workers on the loopback, wait; the exit code is 0 when every worker succeeded."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    procs = []
    try:
        for index in range(n):
            spec = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            env = dict(os.environ, TF_CONFIG=json.dumps(spec))
            procs.append(subprocess.Popen([sys.executable, __file__, config], env=env))
        deadline = time.monotonic() + timeout
        codes = [p.wait(timeout=max(1.0, deadline - time.monotonic())) for p in procs]
        return max(codes)
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, 9)
                p.wait()


if __name__ == "__main__":
    main()
