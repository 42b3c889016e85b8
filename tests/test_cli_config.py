"""Flags made from the config fields: what is given overrides the base, the rest stays."""
import argparse
import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from whitebox.cli.train_options import add_config_flags, config_from_args
from whitebox.train.config import (
    INT_MINIMUMS,
    SN_MODES,
    SUPERPIXEL_METHODS,
    TERMS,
    ConfigError,
    PretrainConfig,
    TrainConfig,
    config_from_json,
    read_run_config,
    resumed_config,
)

REPO = Path(__file__).resolve().parents[1]


def _parse(cls, argv, names=None):
    parser = argparse.ArgumentParser()
    add_config_flags(parser, cls, names)
    return parser, parser.parse_args(argv)


def test_given_flags_override_and_the_rest_is_the_base():
    _, args = _parse(TrainConfig, ["--no-texture", "--tv-weight", "3", "--no-fst-in-losses",
                                   "--keep", "4", "--out", "x", "--sn-mode", "separate"])
    config = config_from_args(TrainConfig, args)
    assert config.disabled == ["texture"] and config.weights == {"tv": 3.0}
    assert config.fst_in_losses is False and config.keep_checkpoints == 4
    assert config.out_dir == "x" and config.sn_mode == "separate"
    assert config.batch_size == TrainConfig().batch_size and config.resume is False

    base = TrainConfig(weights={"surface": 2.0}, disabled=["tv"], iterations=7, seed=5)
    _, args = _parse(TrainConfig, ["--no-texture", "--tv-weight", "3", "--iterations", "9"])
    config = config_from_args(TrainConfig, args, base)
    assert config.weights == {"surface": 2.0, "tv": 3.0}
    assert config.disabled == ["texture", "tv"]
    assert config.iterations == 9 and config.seed == 5


def test_choices_come_from_config_and_pretrain_has_no_train_flags(capsys):
    parser, _ = _parse(TrainConfig, [])
    for flag, choices in (("--superpixel", SUPERPIXEL_METHODS), ("--sn-mode", SN_MODES)):
        with pytest.raises(SystemExit):
            parser.parse_args([flag, "nonsense"])
        err = capsys.readouterr().err
        assert all(c in err for c in choices)
    parser, args = _parse(PretrainConfig, [])
    assert config_from_args(PretrainConfig, args) == PretrainConfig()
    with pytest.raises(SystemExit):
        parser.parse_args(["--no-texture"])
    help_text = parser.format_help()
    assert "--iterations" in help_text and "(default 50000)" in help_text


def test_a_subset_of_flags():
    parser, args = _parse(TrainConfig, ["--seed", "3"], names={"seed", "vgg"})
    assert config_from_args(TrainConfig, args).seed == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["--batch-size", "2"])


def test_every_term_switched_off_is_refused():
    _, args = _parse(TrainConfig, [f"--no-{term}" for term in TERMS])
    with pytest.raises(ConfigError, match="every loss term is switched off"):
        config_from_args(TrainConfig, args).validate()


def _numeric_fields(cls):
    return [f for f in dataclasses.fields(cls) if f.type in (int, float)]


@pytest.mark.parametrize("cls", [PretrainConfig, TrainConfig])
def test_every_number_must_be_finite_and_in_range(cls):
    """Every float field refuses NaN and infinities, every integer field a value below its
    minimum, each naming the field; the defaults pass."""
    base = cls(vgg="v.npz") if cls is TrainConfig else cls()
    base.validate()
    fields = _numeric_fields(cls)
    assert {"lr", "seed", "superpixel_segments"} <= {f.name for f in fields} or cls is PretrainConfig
    for f in fields:
        bad = ([math.nan, math.inf, -math.inf] if f.type is float
               else [INT_MINIMUMS.get(f.name, 1) - 1])
        for value in bad:
            with pytest.raises(ConfigError, match=f"^{f.name} must be"):
                dataclasses.replace(base, **{f.name: value}).validate()
    with pytest.raises(ConfigError, match="^seed must be <"):
        dataclasses.replace(base, seed=2 ** 32).validate()


def test_loss_weights_must_be_finite_and_not_negative():
    for value in (math.nan, math.inf, -1.0):
        with pytest.raises(ConfigError, match="^tv weight must be"):
            TrainConfig(vgg="v.npz", weights={"tv": value}).validate()
    TrainConfig(vgg="v.npz", weights={"tv": 0.0}).validate()


@pytest.mark.parametrize("flags", [["--seed", "-1"], ["--superpixel-segments", "0"],
                                   ["--lr", "nan"], ["--lr", "inf"], ["--tv-weight", "nan"],
                                   ["--content-weight=-inf"], ["--superpixel-jobs", "-1"],
                                   ["--peer-wait", "0"], ["--keep", "0"], ["--lr", "-1"], ["--lr", "x"]])
def test_bad_values_are_usage_errors_before_tensorflow_loads(flags):
    """One line, exit 2, and TensorFlow never imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "train.py"), "train", "--vgg", "v.npz",
         "--out", "never-written"] + flags, capture_output=True, text=True, timeout=120)
    errors = [line for line in result.stderr.splitlines() if not line.startswith("import time")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-2000:]
    assert errors[0].startswith("train.py") and "error: " in errors[0]
    assert "must be" in errors[0] or "invalid float value" in errors[0]
    assert "tensorflow" not in result.stderr
    assert not (REPO / "never-written").exists()


def test_saved_config_types_are_checked():
    with pytest.raises(ConfigError, match="lr must be of type float"):
        config_from_json('{"command": "train", "lr": "0.1"}')
    with pytest.raises(ConfigError, match="seed must be of type int"):
        config_from_json('{"command": "pretrain", "seed": true}')
    for text in ("", '{"command": "train", "lr": ', "[1, 2]"):
        with pytest.raises(ConfigError, match="not valid JSON|not a JSON object"):
            config_from_json(text)


def test_a_device_list_is_dropped_under_another_strategy():
    saved = TrainConfig(strategy="mirrored", devices="/cpu:0,/cpu:1", replicas=2)
    assert resumed_config(saved, "one").devices == ""
    assert resumed_config(saved, "one").strategy == "one"
    assert resumed_config(saved, None) is saved
    assert resumed_config(saved, "mirrored").devices == "/cpu:0,/cpu:1"


def test_saved_relative_paths_are_taken_from_where_the_run_was_started(tmp_path):
    """A run saved with relative paths (before paths were stored absolute) resumes from
    another folder; paths are taken from the folder it was started in."""
    run = tmp_path / "runs" / "t"
    run.mkdir(parents=True)
    saved = TrainConfig(out_dir="runs/t", data_lists="lists", vgg="../v.npz", init_from="")
    (run / "config.json").write_text(saved.to_json())
    for out in (run, Path(os.path.relpath(run))):
        config = read_run_config(out)
        assert config.out_dir == str(run) and config.data_lists == str(tmp_path / "lists")
        assert config.vgg == str(tmp_path.parent / "v.npz") and config.init_from == ""
