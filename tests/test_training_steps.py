"""The G step, the D step, their order, the F_st switch, Adam, loss presets and switches."""
import numpy as np
import pytest
import tensorflow as tf

from tests.training_helpers import tiny_adversarial_step as _trainer
from whitebox.model import losses, representations
from whitebox.model.guided_filter import guided_filter
from whitebox.train.config import PAPER_WEIGHTS, PretrainConfig
from whitebox.train.steps import Adam, PretrainStep

SIZE = 32


@pytest.fixture
def eager():
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def _batch(seed):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.uniform(-1, 1, [2, SIZE, SIZE, 3]), tf.float32),
            tf.constant(rng.uniform(-1, 1, [2, SIZE, SIZE, 3]), tf.float32))


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def test_each_step_updates_only_its_own_network(monkeypatch):
    trainer = _trainer(monkeypatch)
    photo, cartoon = _batch(0)
    g_vars = trainer.generator.trainable_variables
    d_vars = trainer.opt_d.targets
    g0, d0 = _snapshot(g_vars), _snapshot(d_vars)
    trainer.g_step(photo, cartoon)
    assert all(_changed(g0, g_vars))
    assert not any(_changed(d0, d_vars))
    g1 = _snapshot(g_vars)
    trainer.d_step(photo, cartoon)
    assert not any(_changed(g1, g_vars))
    assert all(_changed(d0, d_vars))
    assert int(trainer.opt_g.step.numpy()) == 1 and int(trainer.opt_d.step.numpy()) == 1


def test_d_step_sees_the_updated_generator(monkeypatch, eager):
    trainer = _trainer(monkeypatch)
    photo, cartoon = _batch(1)
    seen = []
    real_surface = representations.surface

    def recording_surface(x):
        seen.append(np.array(x))
        return real_surface(x)

    before = trainer.output(photo).numpy()
    monkeypatch.setattr(representations, "surface", recording_surface)
    trainer.iteration(photo, cartoon)
    after = trainer.output(photo).numpy()
    # G step: surface(out); D step: surface(cartoon), then surface(out').
    assert len(seen) == 3
    np.testing.assert_allclose(seen[0], before, atol=1e-6)
    np.testing.assert_array_equal(seen[1], cartoon.numpy())
    np.testing.assert_allclose(seen[2], after, atol=1e-6)
    assert np.abs(after - before).max() > 1e-4


@pytest.mark.parametrize("fst", [True, False])
def test_fst_switch_decides_what_every_loss_receives(monkeypatch, eager, fst):
    calls = []
    trainer = _trainer(monkeypatch, calls, fst_in_losses=fst)
    photo, cartoon = _batch(2)
    raw = trainer.generator(photo).numpy()
    filtered = guided_filter(photo, tf.constant(raw), 1, 1e-2).numpy()
    assert np.abs(raw - filtered).max() > 1e-3
    expected = filtered if fst else raw
    seen = {"surface": [], "texture": [], "tv": [], "vgg": []}

    def record(name, fn):
        def wrapper(x, *args, **kwargs):
            seen[name].append(np.array(x))
            return fn(x, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(representations, "surface", record("surface", representations.surface))
    monkeypatch.setattr(representations, "texture", record("texture", representations.texture))
    monkeypatch.setattr(losses, "total_variation", record("tv", losses.total_variation))
    trainer.vgg = record("vgg", trainer.vgg)
    trainer.g_step(photo, cartoon)
    assert len(seen["surface"]) == 1 and len(seen["texture"]) == 1 and len(seen["tv"]) == 1
    for name in ("surface", "texture", "tv"):
        np.testing.assert_allclose(seen[name][0], expected, atol=1e-5, err_msg=name)
    # VGG: one pass on [photo; superpixel] (targets), one on the output (content + structure).
    assert len(seen["vgg"]) == 2
    np.testing.assert_allclose(seen["vgg"][1], expected, atol=1e-5)
    np.testing.assert_array_equal(seen["vgg"][0][:2], photo.numpy())
    # The superpixel step got the same tensor, and its result is the structure target.
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0][0], expected, atol=1e-5)
    np.testing.assert_allclose(seen["vgg"][0][2:], np.round(calls[0][0] * 2) / 2)


def test_total_is_the_weighted_sum_with_paper_preset_and_switches(monkeypatch):
    trainer = _trainer(monkeypatch, loss_weights="paper", weights={"tv": 5.0},
                       disabled=["texture"])
    assert trainer.disc_gray is None and trainer.disc_blur is not None
    photo, cartoon = _batch(3)
    terms = {k: float(v) for k, v in trainer.iteration(photo, cartoon).items()}
    assert "g_loss_gray" not in terms and "d_loss_gray" not in terms
    expected = (PAPER_WEIGHTS["surface"] * terms["g_loss_blur"]
                + PAPER_WEIGHTS["content"] * terms["photo_loss"]
                + PAPER_WEIGHTS["structure"] * terms["superpixel_loss"] + 5.0 * terms["tv_loss"])
    np.testing.assert_allclose(terms["g_loss_total"], expected, rtol=1e-5)
    np.testing.assert_allclose(terms["recon_loss"],
                               terms["photo_loss"] + terms["superpixel_loss"], rtol=1e-6)
    np.testing.assert_allclose(terms["d_loss_total"], terms["d_loss_blur"], rtol=1e-6)


def test_code_weights_reproduce_the_reference_total(monkeypatch):
    trainer = _trainer(monkeypatch)
    terms = {k: float(v) for k, v in trainer.g_step(*_batch(4)).items()}
    expected = (1e4 * terms["tv_loss"] + 0.1 * terms["g_loss_blur"] + terms["g_loss_gray"]
                + 200 * terms["recon_loss"])
    np.testing.assert_allclose(terms["g_loss_total"], expected, rtol=1e-5)


def test_structure_off_skips_the_superpixel_step(monkeypatch):
    calls = []
    trainer = _trainer(monkeypatch, calls, disabled=["structure"])
    terms = trainer.g_step(*_batch(5))
    assert calls == [] and "superpixel_loss" not in terms


def test_separate_sn_mode_advances_u_twice_per_step(monkeypatch):
    photo, cartoon = _batch(6)
    u_states = {}
    for mode in ("joint", "separate"):
        trainer = _trainer(monkeypatch, sn_mode=mode)
        trainer.d_step(photo, cartoon)
        u_states[mode] = trainer.disc_blur.layers[0].u.numpy()
    layer = _trainer(monkeypatch).disc_blur.layers[0]
    layer.normalized_kernel()
    np.testing.assert_allclose(u_states["joint"], layer.u.numpy(), rtol=1e-5, atol=1e-7)
    layer.normalized_kernel()
    np.testing.assert_allclose(u_states["separate"], layer.u.numpy(), rtol=1e-5, atol=1e-7)


def test_pretrain_step_is_l1_of_raw_generator():
    tf.keras.utils.set_random_seed(0)
    trainer = PretrainStep(PretrainConfig(batch_size=2, patch_size=SIZE))
    photo, _ = _batch(7)
    expected = np.mean(np.abs(photo.numpy() - trainer.generator(photo).numpy()))
    loss = float(trainer.step(photo)["recon_loss"])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert float(np.mean(np.abs(photo.numpy() - trainer.generator(photo).numpy()))) != loss


def test_adam_matches_tf1_formula_and_keras_adam():
    rng = np.random.default_rng(0)
    init = rng.normal(size=[5, 3]).astype(np.float32)
    # Gradients near epsilon make the epsilon form matter (eps-hat vs eps on bias-corrected v).
    grads = [rng.normal(size=[5, 3]).astype(np.float32) * 10.0 ** -k for k in (0, 3, 8, 8)]
    ours = tf.Variable(init)
    opt = Adam([ours], lr=2e-4, beta1=0.5, beta2=0.99, epsilon=1e-8)
    keras_var = tf.Variable(init)
    keras_opt = tf.keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.99, epsilon=1e-8)
    theta, m, v = init.astype(np.float64), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        opt.apply([tf.constant(g)])
        keras_opt.apply_gradients([(tf.constant(g), keras_var)])
        m = m + (g - m) * 0.5
        v = v + (g.astype(np.float64) ** 2 - v) * 0.01
        lr_t = 2e-4 * np.sqrt(1 - 0.99 ** t) / (1 - 0.5 ** t)
        theta = theta - lr_t * m / (np.sqrt(v) + 1e-8)
    # The weights moved by up to 4 steps of about lr each; they agree to 0.5% of one step.
    np.testing.assert_allclose(ours.numpy(), theta, rtol=0, atol=5e-3 * 2e-4)
    np.testing.assert_allclose(ours.numpy(), keras_var.numpy(), rtol=0, atol=5e-3 * 2e-4)
    assert np.abs(ours.numpy() - init).max() > 1e-4
