"""--precision for training: bf16/fp16 networks over float32 state, fp16 loss scaling, the
hardware fallback and what a resume may change."""
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.training_helpers import (
    assert_losses_close,
    make_dataset,
    random_batches,
    tiny_adversarial_step,
)
from tests.training_helpers import run_iterations as _run
from whitebox.train import training
from whitebox.train.config import PretrainConfig, TrainConfig, resume_mismatches
from whitebox.train.data import folders_under, make_lists
from whitebox.train.loss_scale import DynamicLossScale
from whitebox.train.steps import PretrainStep

SIZE = 32


def _batches(n):
    return random_batches(n, seed=0, size=SIZE)


def _adversarial(monkeypatch, prec):
    """The networks in `prec`, VGG in float32 (what these tolerances were measured with)."""
    return tiny_adversarial_step(monkeypatch, precision=prec, vgg_precision="fp32")


def test_bf16_training_is_close_to_fp32_and_keeps_float32_state(monkeypatch):
    batches = _batches(2)
    ref_trainer = _adversarial(monkeypatch, "fp32")
    ref = _run(ref_trainer, batches)
    trainer = _adversarial(monkeypatch, "bf16")
    low = _run(trainer, batches)
    assert all(np.isfinite(v) for it in low for v in it.values())
    # Iteration 0 uses the same weights: the losses differ by bfloat16 rounding alone (measured
    # up to 0.5%, on the posterised superpixel target). Iteration 1 follows one Adam step,
    # whose first update is about lr * sign(gradient): measured 2.2% on g_loss_total.
    # Each loss within that of itself or of its share of the objective (tv_loss is near zero).
    weights = ref_trainer.config.active_weights()
    assert_losses_close(ref[0], low[0], weights, rtol=2e-2)
    names = ("g_loss_total", "d_loss_total", "g_loss_blur", "g_loss_gray")
    assert_losses_close({n: ref[1][n] for n in names}, {n: low[1][n] for n in names}, weights,
                        rtol=5e-2)
    state = [*trainer.generator.variables, *trainer.disc_gray.variables,
             *trainer.disc_blur.variables, *trainer.opt_g.m, *trainer.opt_g.v,
             *trainer.opt_d.m, *trainer.opt_d.v]
    assert {v.dtype for v in state} == {tf.float32}
    # The networks did compute in bfloat16: the same weights give other outputs.
    for v_ref, v in zip(ref_trainer.generator.variables, trainer.generator.variables):
        v.assign(v_ref)
    photo = batches[0][0]
    a, b = ref_trainer.sample(photo).numpy(), trainer.sample(photo).numpy()
    assert b.dtype == np.float32 and not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, atol=0.05)


def _pretrain_fp16():
    tf.keras.utils.set_random_seed(0)
    return PretrainStep(PretrainConfig(batch_size=2, patch_size=SIZE, precision="fp16"))


def _state(trainer):
    opt = trainer.opt_g
    return [v.numpy().copy() for v in (*opt.targets, *opt.m, *opt.v, opt.beta1_power,
                                       opt.beta2_power, opt.step)]


def test_fp16_overflow_skips_the_step_and_halves_the_scale():
    trainer = _pretrain_fp16()
    photo = _batches(1)[0][0]
    trainer.scale_g.scale.assign(2.0 ** 120)      # the scaled gradients overflow float16
    trainer.scale_g.good_steps.assign(5)
    before = _state(trainer)
    loss = float(trainer.iteration(photo)["recon_loss"])
    assert np.isfinite(loss)                       # the logged loss is not scaled
    after = _state(trainer)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)        # weights, m, v, beta powers, step untouched
    assert float(trainer.scale_g.scale.numpy()) == 2.0 ** 119
    assert int(trainer.scale_g.good_steps.numpy()) == 0


def test_fp16_finite_steps_update_and_grow_the_scale():
    trainer = _pretrain_fp16()
    trainer.scale_g.growth_interval = 2
    trainer.step = trainer._step(trainer._body)    # retrace with the shorter interval
    photo = _batches(1)[0][0]
    assert float(trainer.scale_g.scale.numpy()) == 2.0 ** 15
    trainer.scale_g.scale.assign(4.0)
    before = _state(trainer)
    trainer.iteration(photo)
    assert float(trainer.scale_g.scale.numpy()) == 4.0
    assert int(trainer.scale_g.good_steps.numpy()) == 1
    assert int(trainer.opt_g.step.numpy()) == 1
    assert not np.array_equal(before[0], trainer.opt_g.targets[0].numpy())
    trainer.iteration(photo)
    assert float(trainer.scale_g.scale.numpy()) == 8.0
    assert int(trainer.scale_g.good_steps.numpy()) == 0


def test_loss_scale_halves_but_not_below_one():
    scale = DynamicLossScale(initial=1.5, growth_interval=3)
    scale.update(tf.constant(False))
    assert float(scale.scale.numpy()) == 1.0
    scale.update(tf.constant(False))
    assert float(scale.scale.numpy()) == 1.0
    for _ in range(3):
        scale.update(tf.constant(True))
    assert float(scale.scale.numpy()) == 2.0


def test_fp16_checkpoints_its_loss_scale(tmp_path):
    trainer = _pretrain_fp16()
    assert "loss_scale_generator" in trainer.checkpoint_objects()
    trainer.scale_g.scale.assign(64.0)
    prefix = tf.train.Checkpoint(**trainer.checkpoint_objects()).save(str(tmp_path / "c"))
    other = _pretrain_fp16()
    tf.train.Checkpoint(**other.checkpoint_objects()).restore(prefix) \
        .assert_existing_objects_matched()
    assert float(other.scale_g.scale.numpy()) == 64.0
    tf.keras.utils.set_random_seed(0)
    assert "loss_scale_generator" not in PretrainStep(PretrainConfig()).checkpoint_objects()


def test_unsupported_precision_falls_back_with_one_log_line(tmp_path, plain_cpu, monkeypatch):
    """...in the run's settled config; the config given to run stays as it was."""
    make_dataset(tmp_path / "dataset", count=2, size=32, face=False)
    make_lists(folders_under(tmp_path / "dataset"), tmp_path / "lists")
    monkeypatch.chdir(tmp_path)
    given = dict(data_lists="lists", out_dir="run", batch_size=2, patch_size=32, iterations=1,
                 precision="fp16")
    config = PretrainConfig(**given)
    trainer = training.run(config, echo=False, progress=False)
    assert config == PretrainConfig(**given)
    assert (trainer.config.precision, trainer.config.replicas) == ("fp32", 1)
    assert trainer.config.out_dir == str(tmp_path / "run")
    assert trainer.dtype == tf.float32 and trainer.scale_g is None
    log = (tmp_path / "run/log.txt").read_text().splitlines()
    assert [line for line in log if "unavailable" in line] == [
        "precision fp16 unavailable (needs a GPU (TF's float16 convolutions on CPU are slow "
        "fallbacks)); using fp32"]
    saved = json.loads((tmp_path / "run/config.json").read_text())
    assert saved["precision"] == "fp32"


@pytest.mark.parametrize("saved, now, ok", [("fp32", "bf16", True), ("bf16", "fp32", True),
                                            ("fp32", "fp16", False), ("fp16", "bf16", False),
                                            ("fp16", "fp16", True)])
def test_what_precision_a_resume_may_change(saved, now, ok):
    diff = resume_mismatches(TrainConfig(precision=saved), TrainConfig(precision=now))
    assert diff == ([] if ok else ["precision"])
