"""The training loop: outputs, resume equivalence, refusals, the NaN guard."""
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests.training_helpers import (
    assert_same_variables,
    checkpoint_variables,
    make_dataset,
    tiny_run_folder,
    tiny_train_config,
)
from whitebox.model import losses
from whitebox.model.checkpoints import CheckpointError, list_checkpoints, load_generator
from whitebox.model.network import Generator
from whitebox.train import run_folder, training
from whitebox.train.config import ConfigError, PretrainConfig
from whitebox.train.data import folders_under, make_lists


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_run_folder(tmp_path_factory.mktemp("run"))


def _config(setup, out, **kw):
    return tiny_train_config(setup, out, **kw)


def test_resume_equals_straight_run(setup):
    training.run(_config(setup, "straight", iterations=4), echo=False, progress=False)
    training.run(_config(setup, "split", iterations=2), echo=False, progress=False)
    training.run(_config(setup, "split", iterations=4, resume=True), echo=False, progress=False)
    a = checkpoint_variables(setup / "straight/checkpoints")
    b = checkpoint_variables(setup / "split/checkpoints")
    assert a.keys() == b.keys()
    assert any(k.startswith("generator/") for k in a) and any(k.startswith("disc_gray/") for k in a)
    assert any(k.startswith("rng/") for k in a)
    assert_same_variables(a, b)
    iteration = [k for k in a if k.startswith("iteration")][0]
    assert int(a[iteration]) == 4
    log = (setup / "split/log.txt").read_text()
    assert "resumed from" in log and "ckpt-2" in log


def test_outputs_of_a_run(setup):
    trainer = training.run(_config(setup, "outputs", print_every=1), echo=False,
                           progress=False)
    out = setup / "outputs"
    saved = json.loads((out / "config.json").read_text())
    assert saved["command"] == "train" and saved["fst_in_losses"] is True
    for name in ("face_result", "face_photo", "scenery_result", "scenery_photo"):
        assert (out / "images" / f"1_{name}.jpg").is_file()
    events = list((out / "train_log").glob("events.out.tfevents.*"))
    tags = {}
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append(event.step)
    assert set(tags) == set(run_folder.SCALARS)
    assert all(steps == [0, 1] for steps in tags.values())
    # Checkpoints hold everything, and inference's loader reads the generator from them.
    from whitebox.model.checkpoints import load_generator
    from whitebox.model.network import Generator
    g = Generator()
    load_generator(g, out / "checkpoints")
    for a, b in zip(g.trainable_variables, trainer.generator.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    keys = checkpoint_variables(out / "checkpoints").keys()
    for part in ("disc_blur/", "optimizer_generator/", "optimizer_discriminator/", "rng/"):
        assert any(k.startswith(part) for k in keys), part


def test_refusals(setup):
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        training.run(_config(setup, "outputs"), echo=False, progress=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        training.run(_config(setup, "never", resume=True), echo=False, progress=False)
    with pytest.raises(ConfigError, match="lr"):
        training.run(_config(setup, "outputs", resume=True, iterations=3, lr=1e-3),
                     echo=False, progress=False)


def _poison_tv_after(monkeypatch, calls_before_nan):
    calls = tf.Variable(0)
    real_tv = losses.total_variation

    def poisoned(image):
        calls.assign_add(1)
        return tf.where(calls > calls_before_nan, tf.constant(float("nan")), real_tv(image))

    monkeypatch.setattr(losses, "total_variation", poisoned)


def test_nan_stops_naming_iteration_term_and_checkpoint(setup, monkeypatch):
    _poison_tv_after(monkeypatch, 2)
    with pytest.raises(run_folder.TrainingDiverged) as err:
        training.run(_config(setup, "nan", iterations=4, save_every=1), echo=False,
                     progress=False)
    message = str(err.value)
    ckpt_dir = setup / "nan/checkpoints"
    # Loss 2 was computed with the weights of ckpt-2 (saved after iteration 1): that one is
    # moved aside, and ckpt-1, whose weights gave the finite loss 1, is named.
    assert "iteration 2" in message and "tv_loss" in message
    assert "ckpt-2 holds the weights that gave this loss" in message
    assert message.endswith(f"Last good checkpoint: {ckpt_dir / 'ckpt-1'}")
    assert (ckpt_dir / "diverged/ckpt-2.index").is_file()
    assert list_checkpoints(ckpt_dir) == [str(ckpt_dir / "ckpt-1")]
    assert tf.train.latest_checkpoint(str(ckpt_dir)) == str(ckpt_dir / "ckpt-1")
    monkeypatch.undo()
    training.run(_config(setup, "nan", iterations=3, save_every=1, resume=True), echo=False,
                 progress=False)
    assert "resumed from " + str(ckpt_dir / "ckpt-1") in (setup / "nan/log.txt").read_text()


def test_nan_at_the_first_iteration_after_a_resume(setup, monkeypatch):
    training.run(_config(setup, "nan_resume", iterations=2, save_every=1), echo=False,
                 progress=False)
    _poison_tv_after(monkeypatch, 0)
    with pytest.raises(run_folder.TrainingDiverged) as err:
        training.run(_config(setup, "nan_resume", iterations=3, save_every=1, resume=True),
                     echo=False, progress=False)
    ckpt_dir = setup / "nan_resume/checkpoints"
    assert "ckpt-2 holds the weights" in str(err.value)
    assert str(err.value).endswith(f"Last good checkpoint: {ckpt_dir / 'ckpt-1'}")
    assert list_checkpoints(ckpt_dir) == [str(ckpt_dir / "ckpt-1")]


def test_divergence_leaves_no_poisoned_checkpoint_in_the_folder(tmp_path):
    """--lr 1e36: update 0 blows the weights up, loss 1 is not finite."""
    make_dataset(tmp_path / "ds", count=2, size=32, face=False)
    make_lists(folders_under(tmp_path / "ds"), tmp_path / "lists")
    config = PretrainConfig(data_lists=str(tmp_path / "lists"), out_dir=str(tmp_path / "pre"),
                            batch_size=2, patch_size=32, iterations=4, save_every=1, lr=1e36)
    with pytest.raises(run_folder.TrainingDiverged, match="iteration 1.*moved to") as err:
        training.run(config, echo=False, progress=False)
    assert "Last good checkpoint: none" in str(err.value)
    ckpt_dir = tmp_path / "pre/checkpoints"
    assert list_checkpoints(ckpt_dir) == []
    poisoned = checkpoint_variables(ckpt_dir / "diverged/ckpt-1")
    assert max(np.abs(v).max() for k, v in poisoned.items() if k.startswith("generator/")) > 1e30
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        load_generator(Generator(), ckpt_dir)


@pytest.fixture(scope="module")
def three_checkpoints(setup):
    """A run with ckpt-1..3, and the straight 4-iteration run a resume must reproduce."""
    training.run(_config(setup, "three", iterations=3, save_every=1), echo=False,
                 progress=False)
    training.run(_config(setup, "four", iterations=4, save_every=1), echo=False,
                 progress=False)
    return setup / "three", checkpoint_variables(setup / "four/checkpoints/ckpt-4")


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _randomise(path):
    path.write_bytes(np.random.default_rng(1).integers(0, 256, path.stat().st_size,
                                                       np.uint8).tobytes())


def _zero(path):
    path.write_bytes(bytes(path.stat().st_size))


@pytest.mark.parametrize("damage, reason", [
    ("truncate", "truncated file"), ("randomise", "checksum mismatch"),
    ("zero", "checksum mismatch"), ("delete index", "no .index file"),
    ("garble state", None)])
def test_resume_skips_a_damaged_latest_checkpoint(setup, three_checkpoints, tmp_path, damage,
                                                  reason):
    source, straight = three_checkpoints
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    ckpt_dir = run_dir / "checkpoints"
    data = next(ckpt_dir.glob("ckpt-3.data-*"))
    {"truncate": lambda: _truncate(data), "randomise": lambda: _randomise(data),
     "zero": lambda: _zero(data), "delete index": (ckpt_dir / "ckpt-3.index").unlink,
     "garble state": lambda: (ckpt_dir / "checkpoint").write_bytes(b"\x00{{garbled")}[damage]()
    training.run(_config(setup, "", out_dir=str(run_dir), iterations=4, save_every=1,
                         resume=True), echo=False, progress=False)
    log = (run_dir / "log.txt").read_text().splitlines()
    resumed_from = "ckpt-3" if reason is None else "ckpt-2"
    assert f"resumed from {ckpt_dir / resumed_from} at iteration {resumed_from[-1]}" in log
    skipped = [line for line in log if line.startswith("resume: skipped")]
    if reason is None:
        assert skipped == []
    else:
        assert skipped == [f"resume: skipped {ckpt_dir / 'ckpt-3'}: unreadable checkpoint: "
                           + ("damaged data (checksum mismatch)"
                              if reason == "checksum mismatch" else reason)]
    # Nothing of the damaged checkpoint leaked in: the result equals the straight run.
    resumed = checkpoint_variables(ckpt_dir / "ckpt-4")
    assert_same_variables(straight, resumed)


def test_resume_with_every_checkpoint_damaged_is_an_error(setup, three_checkpoints, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(three_checkpoints[0], run_dir)
    for data in (run_dir / "checkpoints").glob("ckpt-*.data-*"):
        _zero(data)
    with pytest.raises(CheckpointError, match="none of its 3 checkpoint"):
        training.run(_config(setup, "", out_dir=str(run_dir), iterations=4, save_every=1,
                             resume=True), echo=False, progress=False)
    assert (run_dir / "log.txt").read_text().count("resume: skipped") == 3


def test_a_moved_run_folder_resumes(setup, three_checkpoints, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(three_checkpoints[0], moved)
    training.run(_config(setup, "", out_dir=str(moved), iterations=4, save_every=1,
                         resume=True), echo=False, progress=False)
    assert json.loads((moved / "config.json").read_text())["out_dir"] == str(moved)
    log = (moved / "log.txt").read_text()
    assert f"run folder moved: was {three_checkpoints[0]}, now {moved}" in log
    assert (moved / "checkpoints/ckpt-4.index").is_file()
    assert not (three_checkpoints[0] / "checkpoints/ckpt-4.index").exists()


def test_pretrain_run_without_face_lists(setup, tmp_path):
    make_dataset(tmp_path / "ds", count=2, size=32, face=False)
    make_lists(folders_under(tmp_path / "ds"), tmp_path / "lists")
    config = PretrainConfig(data_lists=str(tmp_path / "lists"), out_dir=str(tmp_path / "pre"),
                            batch_size=2, patch_size=32, iterations=1, sample_every=1)
    training.run(config, echo=False, progress=False)
    log = (tmp_path / "pre/log.txt").read_text()
    assert "every iteration uses scenery" in log
    assert (tmp_path / "pre/images/0_scenery_result.jpg").is_file()
    assert not (tmp_path / "pre/images/0_face_result.jpg").exists()


def test_small_image_in_a_list_stops_the_run_naming_it(setup, tmp_path):
    from tests.training_helpers import write_images
    from whitebox.train.data import DataError
    lists = tmp_path / "lists"
    lists.mkdir()
    good = write_images(tmp_path / "good", 2, size=32)
    small = write_images(tmp_path / "small", 2, size=24, prefix="tiny")
    (lists / "photo_scenery.txt").write_text("\n".join(str(p) for p in small + good) + "\n")
    config = PretrainConfig(data_lists=str(lists), out_dir=str(tmp_path / "pre"), batch_size=4,
                            patch_size=32, iterations=1)
    with pytest.raises(DataError, match=r"tiny00[01].png: 24x24 is smaller"):
        training.run(config, echo=False, progress=False)
