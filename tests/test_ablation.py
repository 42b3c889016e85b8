"""The ablation runner: matrices, resume after a kill, failed variants, the three reports."""
import json
import signal

import cv2
import numpy as np
import pytest

from tests.inception_standin import write_standin
from tests.training_helpers import (
    install_fake_superpixel,
    make_dataset,
    tiny_vgg_weights,
)
from whitebox.cli import ablate
from whitebox.evaluate import ablation
from whitebox.train.config import ConfigError


def test_builtin_matrices_and_files(tmp_path):
    name, fst = ablation.load_matrix("fst")
    assert name == "fst" and list(fst) == ["code", "no-fst", "paper-weights", "paper"]
    assert fst["paper"] == {"fst_in_losses": False, "loss_weights": "paper",
                            "superpixel": "selective"}
    _, terms = ablation.load_matrix("terms")
    assert terms["no-tv"] == {"disabled": ["tv"]} and len(terms) == 6
    toml = tmp_path / "mine.toml"
    toml.write_text('[variants.fast]\nlr = 4e-4\n[variants.slow]\nlr = 1e-4\n')
    assert ablation.load_matrix(str(toml)) == ("mine", {"fast": {"lr": 4e-4},
                                                        "slow": {"lr": 1e-4}})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"x": {"out_dir": "elsewhere"}}))
    with pytest.raises(ablation.AblationError, match="may not set out_dir"):
        ablation.load_matrix(str(bad))
    with pytest.raises(ablation.AblationError, match="neither a built-in"):
        ablation.load_matrix("nope")
    with pytest.raises(ConfigError, match="unknown TrainConfig fields"):
        ablation.variant_config({}, {"learning_rate": 1}, tmp_path / "v")


def test_failed_variant_is_marked_and_the_others_run(tmp_path):
    (tmp_path / "out/b/checkpoints").mkdir(parents=True)
    (tmp_path / "out/b/checkpoints/ckpt-1.index").write_bytes(b"")
    seen = []

    def train(config):
        seen.append((config.out_dir, config.resume, config.fst_in_losses))
        if config.out_dir.endswith("/a"):
            raise FloatingPointError("iteration 3: loss tv_loss is nan")

    def evaluate(checkpoints, eval_dir):
        return dict(fid_to_cartoon=12.5, fid_to_photo=3.25, n_cartoonized=4)

    base = dict(iterations=5, disabled=["content", "structure"])
    rows = ablation.run_ablation({"a": {}, "b": {"fst_in_losses": False}}, base,
                                 tmp_path / "out", evaluate, train=train, say=lambda _: None)
    assert [r["status"] for r in rows] == ["failed", "done"]
    assert "tv_loss is nan" in rows[0]["error"] and rows[1]["fid_to_photo"] == 3.25
    assert seen[1][1:] == (True, False)      # b resumed from its checkpoint, F_st off
    table = (tmp_path / "out/ablation.md").read_text()
    assert "| a |" in table and "failed: FloatingPointError" in table and "12.50" in table
    assert (tmp_path / "out/a/error.txt").is_file()
    # a second run keeps both results, unless failed ones are retried
    seen.clear()
    ablation.run_ablation({"a": {}, "b": {"fst_in_losses": False}}, base, tmp_path / "out",
                          evaluate, train=train, say=lambda _: None)
    assert seen == []
    ablation.run_ablation({"a": {}, "b": {"fst_in_losses": False}}, base, tmp_path / "out",
                          evaluate, train=train, retry_failed=True, say=lambda _: None)
    assert [s[0][-1] for s in seen] == ["a"]


@pytest.fixture
def setup(tmp_path, tf1_checkpoint, monkeypatch):
    from whitebox.model import vgg
    from whitebox.train.data import folders_under, make_lists

    install_fake_superpixel(monkeypatch)
    make_dataset(tmp_path / "dataset", count=3, size=32)
    make_lists(folders_under(tmp_path / "dataset"), tmp_path / "lists")
    vgg.save_npz(tiny_vgg_weights(0), tmp_path / "vgg.npz")
    pb, _ = write_standin(tmp_path / "inception")
    rng = np.random.default_rng(0)
    for folder, count in (("photos", 5), ("cartoons", 6)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"),
                        rng.integers(0, 256, (32, 40, 3), np.uint8))
    (tmp_path / "matrix.json").write_text(json.dumps(
        {"variants": {"code": {}, "no-fst": {"fst_in_losses": False}}}))
    argv = [str(tmp_path / "matrix.json"), "--out", str(tmp_path / "out"), "--iterations", "2",
            "--data-lists", str(tmp_path / "lists"), "--init-from", str(tf1_checkpoint[0]),
            "--vgg", str(tmp_path / "vgg.npz"), "--batch-size", "2", "--patch-size", "32",
            "--set", "superpixel_jobs=1", "--set", "disc_channel=8",
            "--photos", str(tmp_path / "photos"), "--cartoons", str(tmp_path / "cartoons"),
            "--inception", str(pb), "--format", "png", "--grid", "4", "--kid",
            "--kid-subsets", "2", "-q"]
    return tmp_path, argv


def test_two_variants_end_to_end_with_a_kill_between_them(setup, monkeypatch, capsys):
    from whitebox.train import training

    root, argv = setup
    real_run, calls = training.run, []

    def killed_at_second(config, **kw):
        calls.append(config.out_dir)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(config, **kw)

    monkeypatch.setattr(training, "run", killed_at_second)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # pytest keeps its Ctrl-C
    assert ablate.main(argv) == 130 and capsys.readouterr().err.endswith("interrupted\n")
    report = json.loads((root / "out/ablation.json").read_text())
    assert [v["status"] for v in report["variants"]] == ["done", "pending"]

    calls.clear()
    monkeypatch.setattr(training, "run", lambda config, **kw: (calls.append(config.out_dir),
                                                                real_run(config, **kw)))
    assert ablate.main(argv) == 0
    assert [c.rsplit("/", 1)[-1] for c in calls] == ["no-fst"]   # only the missing one
    report = json.loads((root / "out/ablation.json").read_text())
    rows = report["variants"]
    assert [r["name"] for r in rows] == ["code", "no-fst"]
    assert all(r["status"] == "done" and r["iterations"] == 2 for r in rows)
    assert all(r["fid_to_cartoon"] > 0 and "kid_to_photo" in r and r["n_cartoonized"] == 5
               for r in rows)
    assert rows[0]["fid_to_cartoon"] != rows[1]["fid_to_cartoon"]
    assert report["extractor"]["image_size"] == [64, 64] and len(report["extractor"]["sha256"]) == 64
    for name in ("code", "no-fst"):
        assert (root / "out" / name / "checkpoints").is_dir()
        assert list((root / "out" / name / "train_log").glob("events.out.tfevents.*"))
        assert json.loads((root / "out" / name / "config.json").read_text())["iterations"] == 2
    table = (root / "out/ablation.md").read_text()
    assert "| code |" in table and "| no-fst |" in table and "fst_in_losses" in table
    assert table in capsys.readouterr().out
    sheet = cv2.imread(str(root / "out/ablation.png"))
    assert sheet.shape == (28 + 4 * 192, 3 * 192, 3)
    # the no-fst column differs from the code column
    assert np.abs(sheet[28:, 192:384].astype(int) - sheet[28:, 384:].astype(int)).max() > 0


def test_cli_refuses_a_bad_matrix_before_training(tmp_path, capsys):
    code = ablate.main(["nonsense", "--out", str(tmp_path / "out"), "--iterations", "1",
                        "--photos", str(tmp_path), "--cartoons", str(tmp_path),
                        "--inception", str(tmp_path / "x.pb")])
    assert code == 2 and "neither a built-in matrix" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_bad_setting_before_embedding_the_photos(tmp_path, capsys, monkeypatch):
    """A --set value that no variant can train with is a usage error found before the
    extractor loads and the photos are embedded (minutes with the real Inception graph)."""
    from whitebox.evaluate import evaluation

    monkeypatch.setattr(evaluation, "CheckpointScorer",
                        lambda *a, **k: pytest.fail("photos embedded before the check"))
    code = ablate.main(["fst", "--out", str(tmp_path / "out"), "--iterations", "1",
                        "--photos", str(tmp_path), "--cartoons", str(tmp_path),
                        "--inception", str(tmp_path / "x.pb"), "--set", "precision=fp64"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "precision must be one of" in err[0]
    assert not (tmp_path / "out").exists()


def test_training_flags_reach_every_variant(tmp_path):
    args = ablate.parse_args(["fst", "--out", str(tmp_path), "--iterations", "3",
                              "--photos", "p", "--cartoons", "c", "--inception", "i",
                              "--strategy", "mirrored", "--devices", "/gpu:0,/gpu:1",
                              "--batch-size", "4", "--trust-pickle",
                              "--set", "superpixel_jobs=1"])
    base = ablate.base_config(args)
    assert base == {"strategy": "mirrored", "devices": "/gpu:0,/gpu:1", "batch_size": 4,
                    "trust_pickle": True, "iterations": 3, "save_every": 3,
                    "sample_every": 3, "print_every": 3, "superpixel_jobs": 1}
