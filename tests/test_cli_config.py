"""Flags made from the config fields: what is given overrides the base, the rest stays."""
import argparse

import pytest

from whitebox.cli_config import add_config_flags, config_from_args
from whitebox.config import (SN_MODES, SUPERPIXEL_METHODS, TERMS, ConfigError, PretrainConfig,
                             TrainConfig)


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
