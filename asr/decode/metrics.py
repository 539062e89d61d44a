"""Word and character error rates (jiwer) with per-utterance error counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from asr.data.text import normalize_text


@dataclass
class UtteranceErrors:
    reference: str
    hypothesis: str
    n_ref_words: int
    substitutions: int
    deletions: int
    insertions: int
    char_errors: int
    n_ref_chars: int

    @property
    def word_errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


@dataclass
class ErrorReport:
    utterances: list[UtteranceErrors]

    @property
    def wer(self) -> float:
        return _rate(
            sum(u.word_errors for u in self.utterances),
            sum(u.n_ref_words for u in self.utterances),
        )

    @property
    def cer(self) -> float:
        return _rate(
            sum(u.char_errors for u in self.utterances),
            sum(u.n_ref_chars for u in self.utterances),
        )


def score(references: Sequence[str], hypotheses: Sequence[str]) -> ErrorReport:
    """Normalise both sides (case, punctuation, whitespace), then count errors."""
    if len(references) != len(hypotheses):
        raise ValueError("references and hypotheses differ in number")
    return ErrorReport(
        [
            _score_one(normalize_text(r), normalize_text(h))
            for r, h in zip(references, hypotheses)
        ]
    )


def _score_one(ref: str, hyp: str) -> UtteranceErrors:
    if not ref:  # jiwer refuses empty references: everything heard is inserted
        return UtteranceErrors(ref, hyp, 0, 0, 0, len(hyp.split()), len(hyp), 0)
    words = jiwer.process_words(ref, hyp)
    chars = jiwer.process_characters(ref, hyp)
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    return UtteranceErrors(
        ref,
        hyp,
        len(ref.split()),
        words.substitutions,
        words.deletions,
        words.insertions,
        char_errors,
        len(ref),
    )


def _rate(errors: int, total: int) -> float:
    return errors / total if total else float(errors > 0)
