"""The training speed options: --vgg-precision (VGG19 in the run's precision) and --xla
(compiled G and D updates, the superpixel step outside them)."""
import numpy as np
import pytest
import tensorflow as tf

from tests.training_helpers import random_batches, tiny_vgg
from tests.training_helpers import run_iterations as _run
from tests.training_helpers import tiny_adversarial_step as _trainer
from whitebox.cli import OneLineParser
from whitebox.cli.train_options import add_config_flags, config_from_args
from whitebox.model import precision
from whitebox.train.config import ConfigError, TrainConfig, resume_mismatches

SIZE = 32
ITERATIONS = 3


def _batches(n):
    return random_batches(n, seed=3, size=SIZE)


def _state(trainer):
    objects = trainer.checkpoint_objects().values()
    return [v.numpy() for obj in objects for v in getattr(obj, "variables", ())]


def test_fp32_with_any_vgg_precision_is_bit_identical_to_the_default(monkeypatch):
    """fp32 keeps the reference's float32 VGG whatever --vgg-precision says: the casts of the
    precision code are no-ops, so losses and every variable match bit for bit."""
    batches = _batches(ITERATIONS)
    default = _trainer(monkeypatch)
    ref = _run(default, batches)
    for choice in ("fp32", "same"):
        other = _trainer(monkeypatch, vgg_precision=choice)
        assert other.vgg_dtype == tf.float32
        assert _run(other, batches) == ref
        for a, b in zip(_state(default), _state(other)):
            np.testing.assert_array_equal(a, b)


def test_vgg_precision_same_runs_vgg_in_bf16_close_to_float32():
    vgg = tiny_vgg()
    image = tf.constant(np.random.default_rng(0).uniform(-1, 1, [2, SIZE, SIZE, 3]), tf.float32)
    ref = vgg(image).numpy()
    low = vgg(image, tf.bfloat16)
    assert low.dtype == tf.float32
    low = low.numpy()
    assert not np.array_equal(ref, low)                    # it did compute in bfloat16
    rel = np.mean(np.abs(low - ref)) / np.mean(np.abs(ref))
    assert rel < 0.03, rel                                 # 8-bit mantissa, 12 layers


@pytest.mark.parametrize("choice, bf16_vgg", [("auto", tf.bfloat16), ("fp32", tf.float32),
                                              ("same", tf.bfloat16)])
def test_vgg_precision_choice_decides_the_vgg_dtype(monkeypatch, choice, bf16_vgg):
    trainer = _trainer(monkeypatch, precision="bf16", vgg_precision=choice)
    assert trainer.vgg_dtype == bf16_vgg
    config = trainer.config
    config.precision = "fp16"
    assert config.vgg_dtype_name() == ("fp16" if choice == "same" else "fp32")


def _close(a, b, rel=1e-4, floor=1e-6):
    """|a - b| within rel of the larger magnitude, or within floor for a loss near zero."""
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), floor)


def test_xla_matches_the_uncompiled_steps_and_runs_superpixel_outside(monkeypatch):
    """3 adversarial iterations with --xla: every loss within 1e-4 relative of XLA off (floor
    1e-6 for the tv term, about 1e-6 itself). The superpixel step runs on the host once per
    iteration, on the output of the generator pass with the G step's weights."""
    batches = _batches(ITERATIONS)
    ref = _run(_trainer(monkeypatch), batches)
    calls = []
    trainer = _trainer(monkeypatch, calls, xla=True)
    before = [v.numpy() for v in trainer.generator.trainable_variables]
    got = [{k: float(v) for k, v in trainer.iteration(*batches[0]).items()}]
    assert len(calls) == 1
    after_one = [v.numpy() for v in trainer.generator.trainable_variables]
    for v, value in zip(trainer.generator.trainable_variables, before):
        v.assign(value)
    np.testing.assert_allclose(calls[0][0], trainer.sample(batches[0][0]).numpy(),
                               rtol=1e-5, atol=1e-6)
    for v, value in zip(trainer.generator.trainable_variables, after_one):
        v.assign(value)
    got += _run(trainer, batches[1:])
    assert len(calls) == ITERATIONS
    for i, (a, b) in enumerate(zip(ref, got)):
        assert a.keys() == b.keys()
        bad = {k: (a[k], b[k]) for k in a if not _close(a[k], b[k])}
        assert not bad, (i, bad)


def test_xla_without_the_structure_term_compiles_the_whole_g_step(monkeypatch):
    calls = []
    batches = _batches(2)
    ref = _run(_trainer(monkeypatch, disabled=["structure"]), batches)
    trainer = _trainer(monkeypatch, calls, disabled=["structure"], xla=True)
    got = _run(trainer, batches)
    assert calls == []
    for a, b in zip(ref, got):
        assert all(_close(a[k], b[k]) for k in a), (a, b)


def test_xla_in_bf16_on_a_cpu_falls_back_with_one_line(monkeypatch):
    monkeypatch.setattr(precision, "gpu_compute_capabilities", list)
    lines = []
    assert precision.resolve_xla(True, "bf16", lines.append) is False
    assert lines == ["xla unavailable with precision bf16 on a CPU (XLA's CPU compiler "
                     "rejects its backward pass); using xla off"]
    assert precision.resolve_xla(True, "fp32", lines.append) is True
    assert precision.resolve_xla(False, "bf16", lines.append) is False
    assert len(lines) == 1
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: [(8, 0)])
    assert precision.resolve_xla(True, "bf16", lines.append) is True


def _parse(argv):
    parser = OneLineParser(prog="train.py")
    add_config_flags(parser, TrainConfig)
    return config_from_args(TrainConfig, parser.parse_args(argv))


def test_flags_set_the_fields_and_bad_values_are_refused(capsys):
    config = _parse(["--vgg-precision", "same", "--xla"])
    assert (config.vgg_precision, config.xla) == ("same", True)
    assert (_parse([]).vgg_precision, _parse([]).xla) == ("auto", False)
    with pytest.raises(SystemExit) as err:
        _parse(["--vgg-precision", "bf16"])
    assert err.value.code == 2
    assert "--vgg-precision" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="vgg_precision must be one of"):
        TrainConfig(vgg="x", vgg_precision="half").validate()


def test_a_resume_may_change_xla_and_vgg_precision():
    saved = TrainConfig()
    assert resume_mismatches(saved, TrainConfig(xla=True, vgg_precision="same")) == []
