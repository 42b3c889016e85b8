"""The training loop: outputs, resume equivalence, refusals, the NaN guard."""
import json

import numpy as np
import pytest
import tensorflow as tf

from whitebox import losses, training, vgg
from whitebox.config import ConfigError, PretrainConfig, TrainConfig
from whitebox.data import make_lists, folders_under
from tests.training_helpers import make_dataset, tiny_vgg_weights


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    make_dataset(root / "dataset", count=3, size=32)
    make_lists(folders_under(root / "dataset"), root / "lists")
    vgg.save_npz(tiny_vgg_weights(0), root / "vgg.npz")
    return root


def _config(setup, out, **kw):
    values = dict(data_lists=str(setup / "lists"), out_dir=str(setup / out), batch_size=2,
                  patch_size=32, iterations=2, save_every=2, sample_every=2, print_every=1,
                  vgg=str(setup / "vgg.npz"), superpixel_jobs=1, disc_channel=8, seed=7)
    values.update(kw)
    return TrainConfig(**values)


def _variables(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_resume_equals_straight_run(setup):
    training.run(_config(setup, "straight", iterations=4), echo=False, progress=False)
    training.run(_config(setup, "split", iterations=2), echo=False, progress=False)
    training.run(_config(setup, "split", iterations=4, resume=True), echo=False, progress=False)
    a = _variables(tf.train.latest_checkpoint(str(setup / "straight/checkpoints")))
    b = _variables(tf.train.latest_checkpoint(str(setup / "split/checkpoints")))
    assert a.keys() == b.keys()
    assert any(k.startswith("generator/") for k in a) and any(k.startswith("disc_gray/") for k in a)
    assert any(k.startswith("rng/") for k in a)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6, err_msg=key)
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
    assert set(tags) == set(training.SCALARS)
    assert all(steps == [0, 1] for steps in tags.values())
    # Checkpoints hold everything, and inference's loader reads the generator from them.
    from whitebox.checkpoints import load_generator
    from whitebox.network import Generator
    g = Generator()
    load_generator(g, out / "checkpoints")
    for a, b in zip(g.trainable_variables, trainer.generator.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    keys = _variables(tf.train.latest_checkpoint(str(out / "checkpoints"))).keys()
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


def test_nan_stops_naming_iteration_term_and_checkpoint(setup, monkeypatch):
    calls = tf.Variable(0)
    real_tv = losses.total_variation

    def poisoned(image):
        calls.assign_add(1)
        return tf.where(calls > 1, tf.constant(float("nan")), real_tv(image))

    monkeypatch.setattr(losses, "total_variation", poisoned)
    with pytest.raises(training.TrainingDiverged) as err:
        training.run(_config(setup, "nan", iterations=3, save_every=1), echo=False,
                     progress=False)
    message = str(err.value)
    assert "iteration 1" in message and "tv_loss" in message and "ckpt-1" in message


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
    from whitebox.data import DataError
    from tests.training_helpers import write_images
    lists = tmp_path / "lists"
    lists.mkdir()
    good = write_images(tmp_path / "good", 2, size=32)
    small = write_images(tmp_path / "small", 2, size=24, prefix="tiny")
    (lists / "photo_scenery.txt").write_text("\n".join(str(p) for p in small + good) + "\n")
    config = PretrainConfig(data_lists=str(lists), out_dir=str(tmp_path / "pre"), batch_size=4,
                            patch_size=32, iterations=1)
    with pytest.raises(DataError, match=r"tiny00[01].png: 24x24 is smaller"):
        training.run(config, echo=False, progress=False)
