"""train.py end to end on generated images: make-lists, pretrain, train, resume, errors."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import interrupt_when
from tests.training_helpers import make_dataset, tiny_vgg_weights
from whitebox.cli import train as train_cli

REPO = Path(__file__).resolve().parents[1]
TINY = ["--batch-size", "2", "--patch-size", "32", "--iterations", "2", "--print-every", "1",
        "--sample-every", "2", "--no-progress"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    make_dataset(root / "dataset", count=3, size=32)
    weights = tiny_vgg_weights(0)
    table = {name: [k, b] for name, (k, b) in weights.items()}
    np.save(root / "vgg19_no_fc.npy", table, allow_pickle=True)
    return root


@pytest.fixture(scope="module")
def lists(workdir):
    """Data lists of the module's dataset, made once through the command line."""
    folder = workdir / "lists_shared"
    assert train_cli.main(["make-lists", "--dataset", str(workdir / "dataset"),
                           "--out", str(folder)]) == 0
    return folder


def test_make_lists_pretrain_train_resume(workdir, capsys):
    lists = workdir / "lists"
    assert train_cli.main(["make-lists", "--dataset", str(workdir / "dataset"),
                           "--out", str(lists)]) == 0
    assert len((lists / "cartoon_scenery.txt").read_text().split()) == 3

    pre = workdir / "pre"
    assert train_cli.main(["pretrain", "--data-lists", str(lists), "--out", str(pre)]
                          + TINY) == 0
    assert (pre / "checkpoints/ckpt-2.index").is_file()
    assert json.loads((pre / "config.json").read_text())["command"] == "pretrain"

    # The pickled .npy is refused, converted once, then used.
    run = workdir / "adv"
    args = ["train", "--data-lists", str(lists), "--out", str(run), "--init-from",
            str(pre / "checkpoints"), "--superpixel-jobs", "1", "--no-fst-in-losses",
            "--loss-weights", "paper", "--tv-weight", "123", "--no-texture"] + TINY
    assert train_cli.main(args + ["--vgg", str(workdir / "vgg19_no_fc.npy")]) == 2
    assert "--trust-pickle" in capsys.readouterr().err
    npz = workdir / "vgg.npz"
    assert train_cli.main(["convert-vgg", str(workdir / "vgg19_no_fc.npy"), str(npz),
                           "--trust-pickle"]) == 0
    assert train_cli.main(args + ["--vgg", str(npz)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["fst_in_losses"] is False and config["loss_weights"] == "paper"
    assert config["weights"] == {"tv": 123.0} and config["disabled"] == ["texture"]
    assert config["init_from"] == str(pre / "checkpoints")
    log = (run / "log.txt").read_text()
    assert "generator initialised from" in log and "iter 1: " in log
    assert "g_loss_blur" in log and "g_loss_gray" not in log
    for name in ("face_result", "scenery_result", "face_photo", "scenery_photo"):
        assert (run / "images" / f"1_{name}.jpg").is_file()
    assert list((run / "train_log").glob("events.out.tfevents.*"))

    # --resume alone takes the saved settings; a conflicting flag is refused.
    assert train_cli.main(["train", "--out", str(run), "--resume", "--iterations", "3",
                           "--no-progress"]) == 0
    assert (run / "checkpoints/ckpt-3.index").is_file()
    assert "resumed from" in (run / "log.txt").read_text()
    assert train_cli.main(["train", "--out", str(run), "--resume", "--iterations", "4",
                           "--fst-in-losses", "--no-progress"]) == 2
    assert "fst_in_losses" in capsys.readouterr().err


def test_bad_inputs_exit_2_with_a_message(workdir, capsys):
    assert train_cli.main(["pretrain", "--data-lists", str(workdir / "none"),
                           "--out", str(workdir / "x")] + TINY) == 2
    assert "photo_scenery.txt: no such list file" in capsys.readouterr().err
    assert train_cli.main(["train", "--out", str(workdir / "y")] + TINY) == 2
    assert "--vgg" in capsys.readouterr().err
    assert train_cli.main(["make-lists", "--dataset", str(workdir / "missing")]) == 2


def test_an_out_under_a_file_is_one_line_exit_2(lists, tmp_path, capsys):
    (tmp_path / "notes").write_text("the user's")
    for command, extra in [("pretrain", []), ("train", ["--vgg", str(tmp_path / "v.npz")])]:
        code = train_cli.main([command, "--data-lists", str(lists), "--out",
                               str(tmp_path / "notes" / "run"), *extra] + TINY)
        assert (code, capsys.readouterr().err) == (
            2, f"train.py: error: --out {tmp_path / 'notes' / 'run'}: {tmp_path / 'notes'} is "
               f"a file, not a folder\n")
    assert (tmp_path / "notes").read_text() == "the user's"


def test_help_runs_as_a_script():
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "train", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    pretrain = subprocess.run([sys.executable, str(REPO / "train.py"), "pretrain", "--help"],
                              capture_output=True, text=True, timeout=120)
    assert "--init-from" in pretrain.stdout
    for flag in ("--fst-in-losses", "--no-fst-in-losses", "--loss-weights", "--no-structure",
                 "--content-weight", "--superpixel", "--sn-mode", "--trust-pickle", "--resume",
                 "--seed", "--init-from"):
        assert flag in result.stdout


def test_pretrain_init_from_a_pretrain_run_and_a_tf1_checkpoint(workdir, lists, tf1_checkpoint):
    first = workdir / "pre_first"
    assert train_cli.main(["pretrain", "--data-lists", str(lists), "--out", str(first)]
                          + TINY) == 0
    for source, prefix in ((first / "checkpoints", first / "checkpoints/ckpt-2"),
                           (tf1_checkpoint[0], tf1_checkpoint[0] / "model-33999")):
        out = workdir / f"pre_from_{Path(prefix).name}"
        assert train_cli.main(["pretrain", "--data-lists", str(lists), "--out", str(out),
                               "--init-from", str(source)] + TINY) == 0
        assert json.loads((out / "config.json").read_text())["init_from"] == str(source)
        assert f"generator initialised from {prefix}" in (out / "log.txt").read_text()


def test_convert_vgg_bad_npy_is_one_line_exit_2(workdir, capsys):
    garbage = workdir / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY not really" + bytes(64))
    for src in (workdir / "missing.npy", garbage):
        assert train_cli.main(["convert-vgg", str(src), str(workdir / "out.npz"),
                               "--trust-pickle"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"train.py: error: {src}: ") and err.count("\n") == 1
    assert not (workdir / "out.npz").exists()
    assert train_cli.main(["convert-vgg", str(garbage), str(garbage), "--trust-pickle"]) == 2
    assert "is the input file" in capsys.readouterr().err


def test_resume_with_every_checkpoint_damaged_exits_2(workdir, lists, capsys):
    run = workdir / "pre_damaged"
    assert train_cli.main(["pretrain", "--data-lists", str(lists), "--out", str(run)]
                          + TINY) == 0
    for data in (run / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:10])
    capsys.readouterr()
    assert train_cli.main(["pretrain", "--out", str(run), "--resume", "--iterations", "3",
                           "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "resume: skipped" in captured.err and "resume: skipped" not in captured.out
    assert "train.py: error:" in captured.err and "Traceback" not in captured.err


def test_ctrl_c_stops_training_on_one_line_naming_where_to_resume(lists, tmp_path):
    """A real SIGINT once checkpoints exist: exit 130, no traceback, and one line that names
    the newest checkpoint, from which --resume continues."""
    out = tmp_path / "run"
    code, err = interrupt_when(
        [sys.executable, str(REPO / "train.py"), "pretrain", "--data-lists", str(lists),
         "--out", str(out), "--batch-size", "2", "--patch-size", "32", "--iterations",
         "100000", "--save-every", "2", "--no-progress"],
        lambda: (out / "checkpoints" / "ckpt-4.index").is_file())
    assert code == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: pretrain stopped at iteration "), last
    newest = last.rsplit("--resume continues from ", 1)[1]
    assert Path(newest + ".index").is_file()
    assert train_cli.main(["pretrain", "--data-lists", str(lists), "--out", str(out),
                           "--resume", "--iterations", str(int(newest.rsplit("-", 1)[1]) + 1),
                           "--no-progress"]) == 0


@pytest.fixture(scope="module")
def saved_run(workdir, lists):
    """A 2-iteration pretrain run with a checkpoint."""
    run = workdir / "pre_saved"
    assert train_cli.main(["pretrain", "--data-lists", str(lists), "--out", str(run)]
                          + TINY) == 0
    return run


@pytest.mark.parametrize("damage", ["truncated", "empty", "not an object", "wrong type",
                                    "missing", "no folder"])
def test_a_bad_run_folder_is_one_line_naming_it(saved_run, tmp_path, capsys, damage):
    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    config = run / "config.json"
    text = config.read_text()
    if damage == "no folder":
        shutil.rmtree(run)
    else:
        {"truncated": lambda: config.write_text(text[:len(text) // 2]),
         "empty": lambda: config.write_text(""),
         "not an object": lambda: config.write_text("[]"),
         "wrong type": lambda: config.write_text(text.replace('"seed": 0', '"seed": "zero"')),
         "missing": config.unlink}[damage]()
    capsys.readouterr()
    assert train_cli.main(["pretrain", "--out", str(run), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("train.py: error: "), err
    expected = {"no folder": f"{run}: nothing to resume: no such folder",
                "missing": f"{run}: nothing to resume: not a run folder (no config.json)"}
    assert expected.get(damage, f"{config}: damaged run config: ") in err
    if damage not in expected:
        assert config.read_text() != text                # left as it was found
    assert "vgg" not in err


def test_resume_with_another_strategy_drops_the_saved_device_list(saved_run, tmp_path):
    """A run saved by --strategy mirrored with --devices resumes under --strategy one."""
    run = tmp_path / "run"
    shutil.copytree(saved_run, run)
    saved = json.loads((run / "config.json").read_text())
    saved.update(strategy="mirrored", devices="/cpu:0,/cpu:1", replicas=2)
    (run / "config.json").write_text(json.dumps(saved))
    assert train_cli.main(["pretrain", "--out", str(run), "--resume", "--strategy", "one",
                           "--iterations", "3", "--no-progress"]) == 0
    resumed = json.loads((run / "config.json").read_text())
    assert resumed["strategy"] == "one" and resumed["devices"] == "" and resumed["replicas"] == 1
    assert (run / "checkpoints/ckpt-3.index").is_file()


def test_resume_from_another_working_directory(workdir, tmp_path, monkeypatch):
    """A run made with relative paths resumes from another folder, with or without the paths
    given again (relative to the new folder), and does not claim it moved."""
    monkeypatch.chdir(tmp_path)
    assert train_cli.main(["make-lists", "--dataset", str(workdir / "dataset"), "--out",
                           "lists", "--absolute"]) == 0
    assert train_cli.main(["pretrain", "--data-lists", "lists", "--out", "runs/t"] + TINY) == 0
    saved = json.loads((tmp_path / "runs/t/config.json").read_text())
    assert saved["data_lists"] == str(tmp_path / "lists")
    assert saved["out_dir"] == str(tmp_path / "runs/t")
    monkeypatch.chdir(tmp_path / "runs")
    assert train_cli.main(["pretrain", "--out", "t", "--resume", "--iterations", "3",
                           "--no-progress"]) == 0
    assert train_cli.main(["pretrain", "--out", "t", "--resume", "--iterations", "4",
                           "--data-lists", "../lists", "--no-progress"]) == 0
    assert (tmp_path / "runs/t/checkpoints/ckpt-4.index").is_file()
    assert "moved" not in (tmp_path / "runs/t/log.txt").read_text()
    # Another list folder is another setting.
    shutil.copytree(tmp_path / "lists", tmp_path / "runs/lists")
    assert train_cli.main(["pretrain", "--out", "t", "--resume", "--iterations", "5",
                           "--data-lists", "lists", "--no-progress"]) == 2
