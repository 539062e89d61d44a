"""Text normalisation for training and scoring, and the character tokenizer."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

BLANK = "<blank>"
_KEEP = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case, strip accents and punctuation (apostrophes inside words stay),
    collapse whitespace. The same function serves training targets and scoring."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _KEEP.sub(" ", text.replace("-", " "))
    words = [w.strip("'") for w in _SPACES.split(text)]
    return " ".join(w for w in words if w)


class CharTokenizer:
    """Characters <-> ids; id 0 is the CTC blank.

    The vocabulary is built from training text and stored in the checkpoint.
    """

    def __init__(self, symbols: list[str]):
        if not symbols or symbols[0] != BLANK:
            raise ValueError("the first symbol of a CTC vocabulary must be the blank")
        self.symbols = list(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def build(cls, texts: Iterable[str]) -> CharTokenizer:
        chars = {c for t in texts for c in normalize_text(t)}
        return cls([BLANK, *sorted(chars)])

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        """Normalised text -> ids; characters outside the vocabulary are dropped."""
        return [self._ids[c] for c in normalize_text(text) if c in self._ids]

    def decode(self, ids: Iterable[int]) -> str:
        """ids (no blanks, repeats already collapsed) -> text."""
        text = "".join(self.symbols[i] for i in ids if i != 0)
        return _SPACES.sub(" ", text).strip()

    def to_dict(self) -> dict:
        return {"type": "char", "symbols": self.symbols}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        return cls(list(d["symbols"]))
