"""Search LM weight and word insertion bonus on a dev set (emissions computed once)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm import tqdm

from asr.audio.padding import load_padded
from asr.data.dataset import padded_batches
from asr.data.manifest import Utterance
from asr.data.text import Tokenizer
from asr.decode.decoder import DecodingOptions, build_decoder
from asr.decode.metrics import score
from asr.model.acoustic import ASRModel
from asr.model.device import model_device


@dataclass
class TuningResult:
    best: DecodingOptions
    best_wer: float
    table: list[tuple[float, float, float]]  # (lm_weight, word_score, WER)


@torch.inference_mode()
def compute_emissions(
    model: ASRModel,
    utts: Sequence[Utterance],
    batch_seconds: float = 120.0,
    pad_ms: float = 0.0,
) -> list[torch.Tensor]:
    """Per utterance log-probs, shape = (T_i, V), in manifest order; ``pad_ms``
    as DecodingOptions.pad_ms (what transcription with those options reads)."""
    wavs = [load_padded(u.audio_filepath, pad_ms) for u in utts]
    out: list[torch.Tensor | None] = [None] * len(wavs)
    device = model_device(model)
    for batch, padded, lens in padded_batches(wavs, batch_seconds):
        lp, out_lens = model(padded.to(device), lens.to(device))
        for i, row, n in zip(batch, lp.cpu(), out_lens.tolist()):
            out[i] = row[:n].clone()
    return out  # type: ignore[return-value]


def decode_emissions(
    options: DecodingOptions,
    tokenizer: Tokenizer,
    emissions: Sequence[torch.Tensor],
) -> list[str]:
    decoder = build_decoder(options, tokenizer)
    lens = torch.tensor([len(e) for e in emissions])
    padded = torch.nn.utils.rnn.pad_sequence(list(emissions), batch_first=True)
    return [nbest[0].text for nbest in decoder.decode(padded, lens)]


def tune_decoder(
    emissions: Sequence[torch.Tensor],
    references: Sequence[str],
    tokenizer: Tokenizer,
    base: DecodingOptions,
    lm_weights: Sequence[float],
    word_scores: Sequence[float],
    progress: bool = True,
) -> TuningResult:
    """Grid search; ties keep the first (smallest LM weight, then word score)."""
    table = []
    grid = list(itertools.product(lm_weights, word_scores))
    for lm_weight, word_score in tqdm(grid, desc="tuning", disable=not progress):
        opts = dataclasses.replace(base, lm_weight=lm_weight, word_score=word_score)
        wer = score(references, decode_emissions(opts, tokenizer, emissions)).wer
        table.append((lm_weight, word_score, wer))
    lm_weight, word_score, wer = min(table, key=lambda r: r[2])
    best = dataclasses.replace(base, lm_weight=lm_weight, word_score=word_score)
    return TuningResult(best, wer, table)
