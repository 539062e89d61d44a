"""recipes/an4/sweep.sh: a real (tiny) Hydra multirun and its results table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import sweep_table  # noqa: E402


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sweep_runs_each_combination_and_tabulates(an4_manifest, tmp_path):
    data, exp, sweep = tmp_path / "data", tmp_path / "exp", tmp_path / "sweep"
    data.mkdir()
    text = an4_manifest.read_text()  # absolute audio paths: copies stay valid
    (data / "train.jsonl").write_text(text)
    (data / "dev.jsonl").write_text(text)
    bin_dir = os.path.dirname(sys.executable)
    subprocess.run(
        [os.path.join(bin_dir, "asr"), "stats", str(data / "train.jsonl"),
         "--level-db", "-25", "--output", str(exp / "cmvn.pt")],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {**os.environ, "DATA": str(data), "EXP": str(exp), "SWEEP": str(sweep)}
    env["PY"] = sys.executable
    out = subprocess.run(
        ["bash", "recipes/an4/sweep.sh", "model.dropout=0.1,0.3",
         "model.hidden_size=32", "model.n_layers=1", "model.conv_channels=4",
         "trainer.epochs=2", "trainer.average_last=2", "trainer.device=cpu",
         "data.max_batch_seconds=8"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sweep_table.read_runs(sweep)
    assert sorted(r["overrides"]["model.dropout"] for r in runs) == ["0.1", "0.3"]
    for run in runs:  # each run trained in its own folder, named by its overrides
        assert "model.dropout=" in run["dir"]
        assert run["epochs"] == 2 and run["averaged_epochs"] == 2
        assert (tmp_path / run["dir"] / "avg.pt").is_file()
    table = (sweep / "results.md").read_text()
    lines = table.splitlines()
    assert lines[0].startswith("| model.dropout | epochs |")
    assert len([x for x in lines if x.startswith("| 0.")]) == 2
    assert "`model.hidden_size=32`" in table  # what all runs share, listed once


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
