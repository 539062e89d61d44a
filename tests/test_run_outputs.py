from __future__ import annotations

import torch

from asr.model.checkpoint import load_model
from asr.train.run_outputs import average_last_epochs, keep_epoch, run_summary
from asr.train.run_state import Progress
from tests.test_checkpoint import make_model


def test_keep_epoch_prunes_to_the_last_k_and_zero_keeps_nothing(tmp_path):
    model, tok = make_model()
    keep_epoch(tmp_path, 1, 0, model, tok, {})
    assert not (tmp_path / "epochs").exists()
    for n in range(1, 6):
        keep_epoch(tmp_path, n, 2, model, tok, {"epoch": n})
    assert sorted(p.name for p in (tmp_path / "epochs").glob("*.pt")) == [
        "004.pt",
        "005.pt",
    ]
    assert load_model(tmp_path / "epochs" / "005.pt")[2]["epoch"] == 5


def test_average_needs_k_epochs_and_averages_exactly_those(tmp_path):
    model, tok = make_model()
    for n in range(1, 4):
        with torch.no_grad():
            model.head.proj.weight.fill_(float(n))
        keep_epoch(tmp_path, n, 3, model, tok, {})
    assert average_last_epochs(tmp_path, 1) is None  # one epoch is no average
    assert average_last_epochs(tmp_path, 4) is None  # only 3 were kept
    assert not (tmp_path / "avg.pt").exists()
    averaged = average_last_epochs(tmp_path, 2)  # epochs 2 and 3
    avg_model = load_model(tmp_path / "avg.pt")[0]
    assert torch.all(avg_model.head.proj.weight == 2.5)
    assert torch.equal(
        averaged["state_dict"]["head.proj.weight"], avg_model.head.proj.weight
    )


def test_summary_names_the_last_epoch_at_the_best_wer():
    p = Progress(epoch=4, best_wer=0.2)
    p.history = [
        {"epoch": 1, "dev_wer": 0.5, "train_seconds": 10.0},
        {"epoch": 2, "dev_wer": 0.2, "train_seconds": 11.0},
        {"epoch": 3, "dev_wer": 0.2},
        {"epoch": 4, "dev_wer": 0.3, "train_seconds": 9.0},
    ]
    s = run_summary(p)
    assert s == {
        "epochs": 4,
        "best_epoch": 3,
        "best_dev_wer": 0.2,
        "last_dev_wer": 0.3,
        "train_seconds": 30.0,
    }
