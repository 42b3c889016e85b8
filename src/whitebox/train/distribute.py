"""Running the training steps on several devices or machines with tf.distribute (`--strategy`).

Every replica holds the same weights, optimiser slots and spectral-norm vectors: they compute
the same update (from all-reduced gradients, or from weights alone for the power iteration), and
the variables' aggregation ONLY_FIRST_REPLICA writes replica 0's value to every copy.
"""
import contextlib
import json
import os
import socket
import time

import tensorflow as tf

from whitebox.train.config import CommonConfig, ConfigError

SUM = tf.distribute.ReduceOp.SUM


def make_strategy(name, devices="", peer_wait=CommonConfig.peer_wait):
    """The tf.distribute.Strategy of `--strategy name`; devices: for `mirrored`, e.g.
    "/gpu:0,/gpu:1" (empty: all local GPUs); peer_wait: see `_join_cluster`."""
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one"
    if name == "one":
        if devices:
            raise ConfigError("devices: only --strategy mirrored takes a device list")
        return tf.distribute.get_strategy()
    if name == "mirrored":
        names = [d.strip() for d in devices.split(",") if d.strip()] or None
        visible = {_type_and_index(d.name): d.name for d in tf.config.list_logical_devices()}
        for n in names or ():
            if _type_and_index(n) not in visible:
                raise ConfigError(f"devices: {n} is not a visible device "
                                  f"(visible: {', '.join(visible.values())})")
        try:
            return tf.distribute.MirroredStrategy(devices=names)
        except (ValueError, RuntimeError) as err:
            raise ConfigError(f"devices: {err}") from None
    if name == "multiworker":
        if devices:
            raise ConfigError("devices: --strategy multiworker uses each worker's local GPUs; "
                              "give no --devices")
        return _join_cluster(_check_tf_config(), peer_wait)
    raise ConfigError(f"unknown strategy {name!r}")


def _type_and_index(name):
    """('CPU', 0) of a device name such as '/gpu:0', 'cpu:0' or '/device:CPU:0'."""
    try:
        spec = tf.DeviceSpec.from_string(name if name.startswith("/") else "/" + name)
    except ValueError:
        return None
    return (spec.device_type or "").upper(), spec.device_index


def _check_tf_config():
    """The parsed TF_CONFIG, checked: a cluster with a 'worker' list, and this task of it."""
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        raise ConfigError("strategy multiworker: TF_CONFIG is not set (see README, "
                          "'Training on several GPUs or machines')")
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        assert isinstance(cluster["worker"], list) and cluster["worker"]
        assert set(cluster) <= {"worker", "chief"} and task["type"] in ("worker", "chief")
        assert isinstance(task["index"], int) and not isinstance(task["index"], bool)
        assert all(isinstance(a, str) and a.rpartition(":")[2].isdigit()
                   for job in cluster.values() for a in job)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise ConfigError('TF_CONFIG: expected {"cluster": {"worker": ["host:port", ...]}, '
                          '"task": {"type": "worker", "index": N}}') from None
    job = cluster.get(task["type"])
    if not job:
        raise ConfigError(f"TF_CONFIG: task type {task['type']!r} has no addresses in the "
                          f"cluster (its jobs: {', '.join(cluster)})")
    if not 0 <= task["index"] < len(job):
        raise ConfigError(f"TF_CONFIG: task index {task['index']} is out of range: the "
                          f"cluster has {len(job)} {task['type']} address(es)")
    return spec


def _join_cluster(spec, peer_wait):
    """MultiWorkerMirroredStrategy of TF_CONFIG `spec`, made once every other task answers.

    TensorFlow's own wait holds the interpreter (Ctrl-C cannot stop it) and never ends, so each
    task first listens on its address and waits until every other takes a TCP connection, at
    most `peer_wait` seconds."""
    task = spec["task"]
    own = spec["cluster"][task["type"]][task["index"]]
    try:
        listener = socket.create_server(("", int(own.rpartition(":")[2])))
    except OSError as err:
        raise ConfigError(f"TF_CONFIG: cannot listen on {own} ({err.strerror})") from None
    silent = []
    try:
        deadline = time.monotonic() + peer_wait
        while silent := _silent_peers(spec):
            if time.monotonic() >= deadline:
                raise ConfigError(f"strategy multiworker: no answer from {', '.join(silent)} "
                                  f"within {peer_wait} s (--peer-wait)")
            time.sleep(0.2)
    except KeyboardInterrupt:
        raise KeyboardInterrupt("while waiting for "
                                + (", ".join(silent) or "the other workers")) from None
    finally:
        listener.close()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (ValueError, RuntimeError) as err:
        raise ConfigError(f"TF_CONFIG: {err}") from None


def _silent_peers(spec):
    """'type index at host:port' of every other task that takes no TCP connection now."""
    task = spec["task"]
    silent = []
    for job, addresses in spec["cluster"].items():
        for index, address in enumerate(addresses):
            if (job, index) == (task["type"], task["index"]):
                continue
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
            except OSError:
                silent.append(f"{job} {index} at {address}")
    return silent


def is_chief(strategy):
    """Whether this process writes the run's files: not a multi-worker run's non-chief workers
    (worker 0 is chief when the cluster has no 'chief' task)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type in (None, "worker") and task_id in (None, 0) and not has_chief


def _first_replica(next_creator, **kwargs):
    kwargs["aggregation"] = tf.VariableAggregation.ONLY_FIRST_REPLICA
    return next_creator(**kwargs)


def scope(strategy):
    """A context creating variables mirrored on every replica, ONLY_FIRST_REPLICA."""
    stack = contextlib.ExitStack()
    stack.enter_context(strategy.scope())
    stack.enter_context(tf.variable_creator_scope(_first_replica))
    return stack


def split_batch(strategy, *batches):
    """Per-replica slices of global batches [B, ...]: replica r gets rows r*B/R .. (r+1)*B/R-1
    of the batch every worker reads."""
    n = strategy.num_replicas_in_sync
    size = int(batches[0].shape[0])
    if size % n:
        raise ConfigError(f"batch_size {size} does not split evenly over {n} replicas")
    local = size // n

    def part(context):
        r = context.replica_id_in_sync_group
        return tuple(tf.identity(b[r * local:(r + 1) * local]) for b in batches)

    return strategy.experimental_distribute_values_from_function(part)


def all_reduce_sum(values):
    """Sum of `values` (a nest) over the replicas, in replica context."""
    return tf.distribute.get_replica_context().all_reduce(SUM, values)
