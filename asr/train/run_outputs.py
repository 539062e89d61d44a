"""What a run leaves besides best.pt and last.pt: the weights of its last epochs
(epochs/NNN.pt), their average (avg.pt) and summary.json's figures."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from asr.data.text import Tokenizer
from asr.model.checkpoint import atomic_save, average_checkpoints, save_model
from asr.train.run_state import Progress


def epochs_dir(out_dir: Path) -> Path:
    return out_dir / "epochs"


def keep_epoch(
    out_dir: Path,
    epoch: int,
    keep: int,
    model: nn.Module,
    tokenizer: Tokenizer,
    meta: dict,
) -> None:
    """Save epoch ``epoch``'s weights as epochs/NNN.pt; only the last ``keep``
    stay (none when keep <= 0)."""
    if keep <= 0:
        return
    folder = epochs_dir(out_dir)
    save_model(folder / f"{epoch:03d}.pt", model, tokenizer, meta)
    for old in sorted(folder.glob("*.pt"))[:-keep]:
        old.unlink()


def average_last_epochs(out_dir: Path, k: int) -> dict | None:
    """avg.pt = the mean weights of the last ``k`` kept epochs; returns that
    checkpoint, or None when k < 2 or fewer than k epochs were kept."""
    if k < 2:
        return None
    epochs = sorted(epochs_dir(out_dir).glob("*.pt"))[-k:]
    if len(epochs) < k:
        return None
    averaged = average_checkpoints(epochs)
    atomic_save(averaged, out_dir / "avg.pt")
    return averaged


def run_summary(p: Progress) -> dict:
    """The figures of a finished run for summary.json (sweep tables)."""
    # best.pt's epoch: the last one at the best WER (end_epoch keeps ties)
    best = [h["epoch"] for h in p.history if h["dev_wer"] == p.best_wer]
    return {
        "epochs": p.epoch,
        "best_epoch": best[-1],
        "best_dev_wer": p.best_wer,
        "last_dev_wer": p.history[-1]["dev_wer"],
        "train_seconds": sum(h.get("train_seconds", 0.0) for h in p.history),
    }
