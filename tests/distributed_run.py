"""Runs one training run in a fresh process (the distributed tests start it as a subprocess).

    python tests/distributed_run.py CONFIG_JSON [--cpus N]

CONFIG_JSON: TrainConfig/PretrainConfig fields as a JSON object with "command". --cpus splits
the CPU into N logical devices (/cpu:0 ... /cpu:N-1), which TensorFlow allows only before it
first initialises its devices, hence the separate process. TF_CONFIG (multi-worker) is read
from the environment. Prints "done" on success.
"""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--cpus", type=int, default=1)
    args = parser.parse_args()

    from whitebox.quiet_tf import import_tensorflow
    tf = import_tensorflow()
    if args.cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpus)
    from whitebox import training
    from whitebox.config import config_from_json

    training.run(config_from_json(args.config), echo=False, progress=False)
    print("done")


if __name__ == "__main__":
    main()
