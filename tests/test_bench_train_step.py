"""bench/train_step.py's CPU-side logic: the --gpu combinations and JSON (run with --quick on
the CPU), the refusal without a GPU, the speed-up table and the G update split."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests.conftest import REPO
from tests.training_helpers import install_fake_superpixel, tiny_vgg

SCRIPT = REPO / "bench" / "train_step.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_train_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=1200)


def test_gpu_bench_without_a_gpu_is_a_one_line_usage_error():
    done = _run("--gpu", "--precisions", "fp32")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "train_step.py: error: --gpu needs a GPU that TensorFlow can see (none here); "
        "--gpu --quick checks the bench on the CPU")


def test_gpu_bench_quick_times_every_strategy_and_xla_setting():
    done = _run("--gpu", "--quick", "--precisions", "fp32", "--superpixel-jobs", "1",
                "--budget-s", "1e9")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["benchmark"] == "train_step_gpu" and report["cpu"]["model"] is not None
    bench = report["gpu_bench"]
    assert (bench["batch"], bench["patch"], bench["skipped_for_budget"]) == (2, 64, [])
    combos = [(r["strategy"], r["precision"], r["xla"]) for r in bench["results"]]
    assert combos == [("one", "fp32", False), ("one", "fp32", True),
                      ("mirrored", "fp32", False), ("mirrored", "fp32", True)]
    for row in bench["results"]:
        assert "error" not in row, row
        assert row["seconds_per_iteration"] > 0 and row["replicas"] == 1
        assert 0 < row["superpixel_share"] <= row["host_wait_share"] <= 1


def test_gpu_bench_starts_no_combination_past_its_budget():
    done = _run("--gpu", "--quick", "--precisions", "fp32", "--budget-s", "0")
    assert done.returncode == 0, done.stderr[-2000:]
    bench = json.loads(done.stdout)["gpu_bench"]
    assert bench["results"] == []
    assert [(c["strategy"], c["xla"]) for c in bench["skipped_for_budget"]] == [
        ("one", False), ("one", True), ("mirrored", False), ("mirrored", True)]


def test_speedups_are_against_todays_fp32_next_to_the_matmul_goal():
    bench = _bench_module()
    results = [{"batch": 4, "patch": 256, "variant": "fp32/vgg-fp32/xla-off", "iteration_s": 4.0},
               {"batch": 4, "patch": 256, "variant": "bf16/vgg-same/xla-off", "iteration_s": 2.0}]
    table = bench.ratios(results, {"bf16_over_fp32": 2.5})
    assert table == {"4x256": {"vs_fp32_today": {"fp32/vgg-fp32/xla-off": 1.0,
                                                  "bf16/vgg-same/xla-off": 2.0},
                               "matmul_bf16_over_fp32": 2.5, "bf16_goal": 1.5}}


def test_g_update_parts_are_timed_on_the_steps_networks(monkeypatch):
    bench = _bench_module()
    install_fake_superpixel(monkeypatch)
    tf.keras.utils.set_random_seed(0)
    vgg = tiny_vgg()
    trainer = bench.make_trainer(2, 32, 1, vgg, ("bf16", "same", False))
    rng = np.random.default_rng(0)
    photo, cartoon = (tf.constant(rng.uniform(-1, 1, [2, 32, 32, 3]), tf.float32)
                      for _ in range(2))
    parts = bench.g_update_parts(trainer, photo, cartoon, 1)
    assert sorted(parts) == ["discriminators", "filters_color_shift", "generator_backward",
                             "vgg_backward", "vgg_forward"]
    assert all(np.isfinite(v) for v in parts.values())


def test_no_parts_skips_the_split_and_interleaved_times_every_variant(monkeypatch, tmp_path):
    install_fake_superpixel(monkeypatch)
    bench = _bench_module()
    vgg = tiny_vgg()
    row = bench.bench(2, 32, 1, 1, vgg, ("fp32", "fp32", False), tmp_path, parts=False)
    assert "g_update_parts_s" not in row and row["iteration_s"] > 0
    variants = [("fp32", "fp32", False), ("bf16", "same", False)]
    table = bench.interleaved(2, 32, 1, 1, vgg, variants)
    assert list(table["iteration_s"]) == ["fp32/vgg-fp32/xla-off", "bf16/vgg-same/xla-off"]
    assert table["vs_first"]["fp32/vgg-fp32/xla-off"] == 1.0
