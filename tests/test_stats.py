"""`asr stats` measures the features a training run computes, overrides included,
and training refuses statistics of other features instead of failing on shapes."""

from __future__ import annotations

import pytest
import torch

from asr.audio.files import load_audio
from asr.cli.app import main
from asr.cli.tools import feature_config
from asr.data.manifest import read_manifest
from asr.features.frontend import FeatureConfig, compute_cmvn_stats
from asr.model.checkpoint import safe_load
from asr.train.trainer import Trainer
from tests.test_training import tiny_config


def stats_file(manifest, out, *overrides: str, level_db: str | None = None) -> dict:
    args = ["stats", str(manifest), "--output", str(out)]
    if level_db is not None:
        args += ["--level-db", level_db]
    assert main([*args, "--overrides", *overrides]) == 0
    return safe_load(out)


def test_stats_measure_the_features_the_run_overrides(an4_manifest, tmp_path):
    # a recipe hands over all its training overrides; only features.* count
    stats = stats_file(
        an4_manifest,
        tmp_path / "cmvn.pt",
        "features.n_mels=40",
        "model.hidden_size=8",
        "augment.speed_factors=[0.9,1.0]",
        level_db="-25",
    )
    cfg = FeatureConfig(n_mels=40, level_db=-25.0)
    clips = [load_audio(u.audio_filepath) for u in read_manifest(an4_manifest)]
    mean, std = compute_cmvn_stats(clips, cfg)
    assert stats["mean"].shape == (40,) and stats["n_mels"] == 40
    assert torch.allclose(stats["mean"], mean) and torch.allclose(stats["std"], std)
    assert stats["features"]["n_mels"] == 40 and stats["level_db"] == -25.0


def test_feature_overrides_are_typed_and_checked():
    base = FeatureConfig(level_db=-25.0)
    cfg = feature_config(base, ["features.hop_ms=5", "features.level_db=null"])
    assert cfg.hop_ms == 5.0 and cfg.level_db is None and cfg.n_mels == 80
    assert feature_config(base, ["features.n_mels=64"]).n_mels == 64
    assert feature_config(base, ["++features.n_mels=64"]).n_mels == 64
    assert feature_config(base, ["features.level_db=-20"]).level_db == -20.0
    assert feature_config(base, ["trainer.epochs=3", "+x=1", "~y"]) == base
    with pytest.raises(ValueError, match="n_mel"):
        feature_config(base, ["features.n_mel=40"])  # a typo is not skipped
    with pytest.raises(ValueError, match="not int"):
        feature_config(base, ["features.n_mels=4.5"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        feature_config(base, ["features.n_mels"])


def test_training_refuses_stats_of_other_features(an4_manifest, tmp_path):
    cfg = tiny_config(an4_manifest, tmp_path / "run", epochs=1, augment=False)
    path = tmp_path / "cmvn40.pt"
    stats_file(an4_manifest, path, "features.n_mels=40")
    cfg.data.cmvn_stats = str(path)
    with pytest.raises(ValueError, match=r"features\.n_mels=80 \(the file's: 40\)"):
        Trainer(cfg)
    # files written before `asr stats` recorded its features: their band count
    old = {k: v for k, v in safe_load(path).items() if k != "features"}
    torch.save(old, path)
    with pytest.raises(ValueError, match="features.n_mels=80"):
        Trainer(cfg)
    # so does the level normalisation (--level-db)
    stats_file(an4_manifest, path, level_db="-25")
    with pytest.raises(ValueError, match=r"features\.level_db=None \(the file's: -25"):
        Trainer(cfg)
    # a power floor changes the statistics too
    stats_file(an4_manifest, path)
    cfg.features.floor_dbfs = -70.0
    with pytest.raises(ValueError, match=r"floor_dbfs=-70.0 \(the file's: None\)"):
        Trainer(cfg)
    cfg.features.floor_dbfs = None
    # the same features as the run: the file's statistics are used
    stats = stats_file(an4_manifest, path)
    trainer = Trainer(cfg)
    assert torch.equal(trainer.model.frontend.cmvn.mean, stats["mean"])
