from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from asr.train.__main__ import CONF_DIR, to_train_config
from asr.train.config import TrainConfig

CONF = Path(CONF_DIR)
MAINS = sorted(p.stem for p in CONF.glob("*.yaml"))
GROUP_OPTIONS = sorted(
    (group.name, option.stem)
    for group in CONF.iterdir()
    if group.is_dir()
    for option in group.glob("*.yaml")
)
REQUIRED = ["data.train_manifest=train.jsonl", "data.dev_manifest=dev.jsonl"]


def test_conf_dir_is_the_repository_conf():
    assert CONF.is_dir() and "an4" in MAINS


@pytest.mark.parametrize("name", MAINS)
def test_every_main_config_composes_into_dataclasses(name):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = to_train_config(compose(config_name=name, overrides=REQUIRED))
    assert isinstance(cfg, TrainConfig)
    assert cfg.data.train_manifest == "train.jsonl"
    assert cfg.model.hidden_size > 0 and cfg.trainer.epochs > 0


@pytest.mark.parametrize("group,option", GROUP_OPTIONS)
def test_every_group_option_composes(group, option):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        raw = compose(config_name="an4", overrides=[*REQUIRED, f"{group}={option}"])
        cfg = to_train_config(raw)
    assert isinstance(getattr(cfg, group), type(getattr(TrainConfig(), group)))


def test_unknown_key_is_rejected():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        raw = compose(config_name="an4", overrides=[*REQUIRED, "+model.widht=3"])
        with pytest.raises(Exception, match="widht"):
            to_train_config(raw)


def test_missing_manifest_is_reported():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        raw = compose(config_name="an4")
        with pytest.raises(Exception, match="train_manifest"):
            to_train_config(raw)


def test_an4_defaults_are_the_documented_best_run():
    """recipes/an4/README.md's headline row: `bash recipes/an4/run.sh` trains it."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = to_train_config(compose(config_name="an4", overrides=REQUIRED))
    m, a, t = cfg.model, cfg.augment, cfg.trainer
    assert (m.n_layers, m.hidden_size, m.rnn, m.dropout) == (3, 320, "lstm", 0.25)
    assert (a.time_masks, a.freq_masks, a.noise_prob) == (4, 2, 0.0)
    assert (t.epochs, t.average_last) == (140, 10)
