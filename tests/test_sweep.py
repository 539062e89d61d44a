"""recipes/an4/sweep.sh: a real (tiny) Hydra multirun and its results table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from conftest import ROOT

from asr.audio.files import load_audio
from asr.data.manifest import read_manifest
from asr.features.frontend import FeatureConfig, compute_cmvn_stats
from asr.model.checkpoint import load_model, safe_load

sys.path.insert(0, str(ROOT / "scripts"))
import sweep_table  # noqa: E402

TINY = ["model.hidden_size=32", "model.n_layers=1", "model.conv_channels=4",
        "trainer.epochs=2", "trainer.average_last=2", "trainer.device=cpu",
        "data.max_batch_seconds=8"]  # fmt: skip


def run_sweep(an4_manifest, tmp_path, *overrides: str, stats: bool = True):
    """recipes/an4/sweep.sh on the bundled AN4 clips (train = dev); with ``stats``,
    run.sh's statistics file first."""
    data, exp, sweep = tmp_path / "data", tmp_path / "exp", tmp_path / "sweep"
    data.mkdir()
    text = an4_manifest.read_text()  # absolute audio paths: copies stay valid
    (data / "train.jsonl").write_text(text)
    (data / "dev.jsonl").write_text(text)
    bin_dir = os.path.dirname(sys.executable)
    if stats:
        subprocess.run(
            [os.path.join(bin_dir, "asr"), "stats", str(data / "train.jsonl"),
             "--level-db", "-25", "--output", str(exp / "cmvn.pt")],
            check=True, capture_output=True,
        )  # fmt: skip
    env = {**os.environ, "DATA": str(data), "EXP": str(exp), "SWEEP": str(sweep)}
    env["PY"] = sys.executable
    return subprocess.run(
        ["bash", "recipes/an4/sweep.sh", *overrides, *TINY],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sweep_runs_each_combination_and_tabulates(an4_manifest, tmp_path):
    out = run_sweep(an4_manifest, tmp_path, "model.dropout=0.1,0.3")
    assert out.returncode == 0, out.stderr[-3000:]
    sweep = tmp_path / "sweep"
    runs = sweep_table.read_runs(sweep)
    shared = safe_load(tmp_path / "exp" / "cmvn.pt")  # run.sh's statistics
    assert sorted(r["overrides"]["model.dropout"] for r in runs) == ["0.1", "0.3"]
    for run in runs:  # each run trained in its own folder, named by its overrides
        assert "model.dropout=" in run["dir"]
        assert run["epochs"] == 2 and run["averaged_epochs"] == 2
        assert (tmp_path / run["dir"] / "avg.pt").is_file()
        model = load_model(tmp_path / run["dir"] / "avg.pt")[0]
        assert torch.equal(model.frontend.cmvn.mean, shared["mean"])
    table = (sweep / "results.md").read_text()
    lines = table.splitlines()
    assert lines[0].startswith("| model.dropout | epochs |")
    assert len([x for x in lines if x.startswith("| 0.")]) == 2
    assert "`model.hidden_size=32`" in table  # what all runs share, listed once


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sweep_over_features_measures_each_runs_statistics(an4_manifest, tmp_path):
    # the shared 80-band file would fail the 40-band run; without it either way
    out = run_sweep(an4_manifest, tmp_path, "features.n_mels=40,80", stats=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "every run measures its own feature statistics" in out.stderr
    runs = sweep_table.read_runs(tmp_path / "sweep")
    assert sorted(int(r["overrides"]["features.n_mels"]) for r in runs) == [40, 80]
    config = FeatureConfig(level_db=-25.0)  # conf/features/logmel80.yaml's level
    wavs = [load_audio(u.audio_filepath) for u in read_manifest(an4_manifest)]
    for run in runs:
        n_mels = int(run["overrides"]["features.n_mels"])
        model = load_model(tmp_path / run["dir"] / "avg.pt")[0]
        mean, std = compute_cmvn_stats(wavs, replace(config, n_mels=n_mels))
        assert model.feature_cfg.n_mels == n_mels
        assert torch.allclose(model.frontend.cmvn.mean, mean, atol=1e-4)
        assert torch.allclose(model.frontend.cmvn.std, std, atol=1e-4)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sweep_without_statistics_file_stops(an4_manifest, tmp_path):
    out = run_sweep(an4_manifest, tmp_path, "model.dropout=0.1,0.3", stats=False)
    assert out.returncode == 1
    assert "cmvn.pt missing" in out.stderr


def test_table_without_averaging_and_sorting(tmp_path):
    for name, wer in (("a", 0.3), ("b", 0.2)):
        run = tmp_path / name
        (run / ".hydra").mkdir(parents=True)
        (run / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={wer}\n")
        summary = {"epochs": 3, "best_epoch": 2, "best_dev_wer": wer,
                   "last_dev_wer": wer + 0.01, "train_seconds": 90.0}  # fmt: skip
        (run / "summary.json").write_text(json.dumps(summary))
    lines = sweep_table.table(sweep_table.read_runs(tmp_path), sort="best").splitlines()
    assert lines[2] == "| 0.2 | 3 | 2 | 20.00% | 21.00% | — | 1.5 |"
    assert lines[3].startswith("| 0.3 |")
    assert sweep_table.main([str(tmp_path / "nothing")]) == 1
