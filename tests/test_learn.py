"""bench/learn.py: the offline convergence experiment, run at --quick scale, and its parts."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, shared_path

sys.path.insert(0, str(REPO / "bench"))
import learn  # noqa: E402


def test_split_is_disjoint_and_complete():
    names = [f"photo{k}" for k in range(18)]
    split = learn.split_sources(names, seed=0)
    parts = [set(split[p]) for p in ("photo", "cartoon", "val")]
    assert all(parts)
    assert set.union(*parts) == set(names)
    assert sum(map(len, parts)) == len(names)


def test_random_crops_size_and_content():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    crops = learn.random_crops(image, 20, 32, rng)
    assert len(crops) == 20 and all(c.shape == (32, 32, 3) for c in crops)
    # different places and scales: not twenty copies of one crop
    assert len({c.tobytes() for c in crops}) == 20


# g_loss_total = 1e4 tv + 0.1 blur + gray + 200 (photo + superpixel), the code's weights
WEIGHTS = {"tv": 1e4, "surface": 0.1, "texture": 1.0, "content": 200.0, "structure": 200.0}


def _losses(g, d, photo=3e-4):
    return {"photo_loss": photo, "g_loss_total": g, "d_loss_total": d}


def test_compare_losses_equal_runs():
    a = {i: _losses(1.5 - i / 10, 0.9) for i in range(4)}
    report = learn.compare_losses(a, {i: dict(v) for i, v in a.items() if i >= 1}, WEIGHTS)
    assert report["held"] and report["compared"] == 3 and report["iterations"] == [1, 3]
    assert report["max_rel_diff"] == 0.0 and report["worst"] is None


def test_compare_losses_names_a_differing_loss():
    a = {1: _losses(1.4, 0.8), 2: _losses(1.3, 0.7)}
    b = {1: _losses(1.4, 0.8), 2: _losses(1.3, 0.7 * (1 + 1e-4))}
    report = learn.compare_losses(a, b, WEIGHTS)
    assert not report["held"] and report["worst"].startswith("iteration 2 d_loss_total")
    assert report["max_rel_diff"] == pytest.approx(1e-4, rel=1e-3)


def test_compare_losses_scales_a_small_term_to_its_share():
    # photo_loss weighs 200 in a g_loss_total of 1.4: 1e-9 off in 3e-4 is 3e-6 relative to
    # itself but far below 1e-5 of its share of the objective, so it agrees
    a, b = {1: _losses(1.4, 0.8)}, {1: _losses(1.4, 0.8, photo=3e-4 + 1e-9)}
    report = learn.compare_losses(a, b, WEIGHTS)
    assert report["held"] and report["max_rel_diff"] > 0


def test_compare_losses_needs_a_common_iteration():
    report = learn.compare_losses({1: _losses(1.4, 0.8)}, {2: _losses(1.3, 0.7)}, WEIGHTS)
    assert not report["held"] and report["compared"] == 0


def test_compare_checkpoints_is_bit_exact(tmp_path):
    import tensorflow as tf

    def save(name, value):
        ckpt = tf.train.Checkpoint(w=tf.Variable(value), step=tf.Variable(3, dtype=tf.int64))
        return ckpt.write(str(tmp_path / name))

    w = np.linspace(-1, 1, 6, dtype=np.float32)
    same = learn.compare_checkpoints(save("a", w), save("b", w.copy()))
    assert same["bit_equal"] and same["variables"] == 2 and same["max_abs_diff"] == 0
    one_ulp = w.copy()
    one_ulp[2] = np.nextafter(one_ulp[2], np.float32(2))
    near = learn.compare_checkpoints(save("a", w), save("c", one_ulp))
    assert not near["bit_equal"] and 0 < near["max_abs_diff"] < 1e-6


def test_kill_point_lies_between_the_first_checkpoints_and_within_the_twin():
    for scale in learn.SCALES.values():
        every = scale["every"]
        for seed in range(20):
            kill = learn.kill_point(scale, np.random.default_rng(seed))
            assert every < kill <= every + every // 2 < learn.twin_iterations(scale)


def test_default_folder_per_scale_and_fst_first(tmp_path, monkeypatch):
    shared_path("weights", "whitebox_official", "checkpoint")
    monkeypatch.setattr(learn, "REPO", tmp_path)
    assert learn.parse_args(["--quick"]).out == tmp_path / "runs" / "learn-quick"
    args = learn.parse_args(["--scale", "probe", "--arms", "no_vgg", "fst", "no_vgg"])
    assert args.out == tmp_path / "runs" / "learn-probe" and args.arms == ["fst", "no_vgg"]


def test_refuses_a_folder_that_holds_files(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "learn.py"), "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not an empty folder" in done.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_draw_writes_the_figure(tmp_path):
    pytest.importorskip("matplotlib", reason="the figure needs requirements-bench.txt")
    scores = dict(psnr=20.0, ssim=0.7, kid=0.01, psnr_to_photo=30.0)
    curve = [dict(iteration=i, **scores) for i in (0, 50, 100)]
    identity = {k: v for k, v in scores.items() if k != "psnr_to_photo"}
    report = dict(title="t", curves={"fst": curve, "no_fst": curve},
                  baselines={"identity": identity, "pretrained": scores})
    image = np.zeros((40, 40, 3), np.uint8)
    strips = {c: [image, image] for c in ("photo", "official", "pretrained", "fst@50",
                                          "no_fst@50")}
    learn.draw(tmp_path / "learn.png", report, strips, rows=[0, 1])
    assert (tmp_path / "learn.png").stat().st_size > 10_000


def _finite(scores, keys=("psnr", "ssim", "kid", "psnr_to_photo")):
    return all(math.isfinite(scores[k]) for k in keys)


def test_quick_run(tmp_path):
    """The whole experiment at --quick scale, one command: data, official cartoons, pretrain,
    both arms (fst killed with SIGKILL and resumed) and fst's uninterrupted twin, scores,
    health checks, JSON and figure."""
    shared_path("weights", "whitebox_official", "checkpoint")
    shared_path("images", "reference_test_images")
    out = tmp_path / "learn"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "learn.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "learn.json").read_text())
    scale = learn.SCALES["quick"]
    assert report["arms"] == ["fst", "no_fst"]
    assert set(report["wall_s"]) == {"data", "pretrain", "adversarial", "evaluate", "total"}

    assert _finite(report["baselines"]["identity"], ("psnr", "ssim", "kid"))
    assert _finite(report["baselines"]["pretrained"])
    for run in ("fst", "no_fst"):
        curve = report["curves"][run]
        assert [c["iteration"] for c in curve] == list(
            range(0, scale["iterations"] + 1, scale["every"]))
        assert all(_finite(c) for c in curve)
        # the runs did train: the last checkpoint's cartoons are not the pretrained ones
        assert curve[-1]["psnr"] != curve[0]["psnr"]
    # the ablation changes what is learned
    assert report["curves"]["fst"][-1] != report["curves"]["no_fst"][-1]

    split = report["data"]["split"]
    assert not (set(split["val"]) & (set(split["photo"]) | set(split["cartoon"])))
    for folder, part in (("photo_scenery", "photo"), ("cartoon_scenery", "cartoon"),
                         ("val_photo", "val")):
        names = {p.name.rsplit("_", 1)[0] for p in (out / "data" / folder).glob("*.png")}
        assert names == set(split[part]), folder

    resume = report["resume"]
    assert resume["held"]
    assert resume["last_logged"] >= resume["after_iteration"] > resume["resumed_at_iteration"]
    twice = resume["killed_vs_resumed"]
    assert twice["held"] and twice["compared"] >= 1
    # the uninterrupted twin (--deterministic, one machine) equals the resumed run bit for bit
    twin, end = resume["twin_vs_resumed"], learn.twin_iterations(scale)
    assert twin["held"] and twin["max_rel_diff"] == 0.0
    assert twin["iterations"] == [resume["resumed_at_iteration"], end - 1]
    assert twin["compared"] == end - resume["resumed_at_iteration"]
    assert resume["twin_checkpoint"]["bit_equal"] and resume["twin_checkpoint"]["iteration"] == end
    health = report["health"]
    assert health["held"] and not any(health["nonfinite_losses"].values())
    assert set(health["checkpoints"]) == {"pretrain", "fst", "no_fst", learn.TWIN}
    assert len(health["checkpoints"]["pretrain"]["found"]) == scale["pretrain_keep"]
    assert set(report["cpu"]) >= {"model", "flags", "bf16_native"}

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert report["figure"] is None
    else:
        assert (out / "learn.png").stat().st_size > 10_000
