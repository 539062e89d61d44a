"""CTC log-probs -> text."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from asr.text import CharTokenizer


@dataclass
class Hypothesis:
    text: str
    tokens: list[int] = field(default_factory=list)
    score: float = 0.0  # total log-probability of the best path


def greedy_decode(
    log_probs: torch.Tensor, lens: torch.Tensor, tokenizer: CharTokenizer
) -> list[Hypothesis]:
    """Best path: argmax per frame, merge repeats, drop blanks (id 0).

    log_probs: shape = (B, T, V); lens: (B,) valid frames per row.
    """
    best, best_ids = log_probs.max(dim=-1)  # (B, T)
    hyps = []
    for row, scores, n in zip(best_ids.tolist(), best, lens.tolist()):
        ids = row[:n]
        tokens = [
            t for k, t in enumerate(ids) if t != 0 and (k == 0 or t != ids[k - 1])
        ]
        hyps.append(
            Hypothesis(tokenizer.decode(tokens), tokens, float(scores[:n].sum()))
        )
    return hyps
