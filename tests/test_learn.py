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


def _log(path, rows):
    path.write_text("".join(f"iter {i}: g_loss_total {g}, d_loss_total {d}\n"
                            for i, g, d in rows) + "iter 3: checkpoint /x/ckpt-4\n")
    return path


def test_resume_check_compares_the_iterations_run_twice(tmp_path):
    rows = [(0, 1.5, 0.9), (1, 1.4, 0.8), (2, 1.3, 0.7), (1, 1.4, 0.8), (2, 1.3, 0.7),
            (3, 1.2, 0.6)]
    report = learn.resume_check(_log(tmp_path / "log.txt", rows), {})
    assert report["held"] and report["iterations_compared"] == 2
    assert report["resumed_at_iteration"] == 1


def test_resume_check_fails_on_a_different_loss(tmp_path):
    rows = [(0, 1.5, 0.9), (1, 1.4, 0.8), (1, 1.4, 0.81), (2, 1.3, 0.7)]
    report = learn.resume_check(_log(tmp_path / "log.txt", rows), {})
    assert not report["held"] and "d_loss_total" in report["worst"]


def test_resume_check_fails_without_any_iteration_run_twice(tmp_path):
    report = learn.resume_check(_log(tmp_path / "log.txt", [(0, 1.5, 0.9), (1, 1.4, 0.8)]),
                                {})
    assert not report["held"] and report["iterations_compared"] == 0


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
    """The whole experiment at --quick scale: data, official cartoons, pretrain, both runs
    (one killed with SIGKILL and resumed), scores, health checks, JSON and figure."""
    shared_path("weights", "whitebox_official", "checkpoint")
    shared_path("images", "reference_test_images")
    out = tmp_path / "learn"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "learn.py"), "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "learn.json").read_text())
    scale = learn.SCALES["quick"]

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
    assert resume["held"] and resume["iterations_compared"] >= 1
    assert resume["last_logged"] >= resume["after_iteration"] > resume["resumed_at_iteration"]
    health = report["health"]
    assert health["held"] and not any(health["nonfinite_losses"].values())
    assert len(health["checkpoints"]["pretrain"]["found"]) == scale["pretrain_keep"]
    assert set(report["cpu"]) >= {"model", "flags", "bf16_native"}

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert report["figure"] is None
    else:
        assert (out / "learn.png").stat().st_size > 10_000
