"""scripts/compare_models.py: the training log is read right and models compared."""

from __future__ import annotations

import torch

from asr.data.text import CharTokenizer
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ModelConfig
from asr.model.checkpoint import save_model
from scripts.compare_models import compare, format_rows, training_log

LOG = """\
[2026-11-29 16:04:24,312][asr.training][INFO] - epoch 1: train loss 88.1, 2259 s of audio in 60.5 s (37.3 s/s)
[2026-11-29 16:04:24,312][asr.training][INFO] - epoch 1: dev WER 100.00% CER 99.48% (validation 3.5s)
[2026-11-29 16:06:11,982][asr.training][INFO] - epoch 2: train loss 41.0, 2262 s of audio in 70.0 s (32.3 s/s)
[2026-11-29 16:06:11,982][asr.training][INFO] - epoch 2: dev WER 85.83% CER 55.89% (validation 5.0s)
"""  # noqa: E501


def test_training_log_sums_epoch_times_and_reads_dev_wer(tmp_path):
    (tmp_path / "train.log").write_text(LOG)
    seconds, epochs, wers = training_log(tmp_path / "train.log")
    assert seconds == 130.5 and epochs == 2
    assert wers == {1: 100.0, 2: 85.83}


def test_compare_two_models(tmp_path, an4_manifest):
    tok = CharTokenizer.build(["abc de"])
    runs = []
    for rnn, hidden in (("lstm", 8), ("gru", 9)):
        torch.manual_seed(0)
        cfg = ModelConfig(conv_channels=4, hidden_size=hidden, n_layers=2, rnn=rnn)
        run = tmp_path / rnn
        run.mkdir()
        save_model(run / "best.pt", ASRModel(cfg, FeatureConfig(), len(tok)), tok, {})
        (run / "train.log").write_text(LOG)
        runs.append(run)
    rows = compare(runs, an4_manifest, threads=1, rounds=1)
    assert [r["rnn"] for r in rows] == ["lstm", "gru"]
    assert all(r["speed"] > 0 and r["wer"] >= 0 and r["best_epoch"] == 2 for r in rows)
    table = format_rows(rows)
    assert "| GRU 2 × 9 |" in table and "| 2 | 2.2 min |" in table
