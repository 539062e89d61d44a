"""Text normalisation for training and scoring, and the tokenizers: characters,
or phones through a pronunciation lexicon."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable

from asr.data.lexicon import PHONES, Lexicon, Pronunciation, cmudict

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

    error_label = "WER"  # what a greedy dev error rate in its own units is

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

    def target_words(self, text: str) -> list[str]:
        """The words of ``text`` as ``encode`` spells them (unknown characters
        dropped)."""
        return self.decode(self.encode(text)).split()

    def spellings(self, word: str) -> list[list[str]]:
        """How a lexicon spells ``word`` in this vocabulary: its characters, or
        nothing when one of them is missing."""
        return [list(word)] if word and all(c in self._ids for c in word) else []


class PhoneTokenizer:
    """Words <-> ARPAbet phone ids through a pronunciation lexicon: a phone model's
    vocabulary. Id 0 is the CTC blank and " " the word boundary; a word's first
    pronunciation is its training target, and beam search spells every word of
    the LM with all of its pronunciations (``spellings``), so the LM picks among
    homophones. Pronunciations come from ``extra`` (the run's own entries, kept
    in the checkpoint) first, then the CMU dictionary."""

    error_label = "PER"  # its greedy words are pronunciations: phone errors

    def __init__(self, symbols: list[str], extra: Lexicon | None = None):
        if not symbols or symbols[0] != BLANK or " " not in symbols:
            raise ValueError("a phone vocabulary is the blank, the space, then phones")
        unknown = set(symbols[1:]) - {" ", *PHONES}
        if unknown:
            raise ValueError(f"not ARPAbet phones: {sorted(unknown)}")
        self.symbols = list(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}
        self.extra = extra or Lexicon()

    @classmethod
    def build(cls, extra: Lexicon | None = None) -> PhoneTokenizer:
        return cls([BLANK, " ", *PHONES], extra)

    def __len__(self) -> int:
        return len(self.symbols)

    def pronunciations(self, word: str) -> list[Pronunciation]:
        return self.extra.pronunciations(word) or cmudict().pronunciations(word)

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` (normalised) that no lexicon pronounces."""
        return [w for w in normalize_text(text).split() if not self.pronunciations(w)]

    def encode(self, text: str) -> list[int]:
        """Normalised text -> phone ids, words apart by the space; words without a
        pronunciation are dropped (``unknown_words`` finds them first)."""
        ids: list[int] = []
        for word in normalize_text(text).split():
            prons = self.pronunciations(word)
            if prons:
                ids += [self._ids[" "]] if ids else []
                ids += [self._ids[p] for p in prons[0]]
        return ids

    def target_words(self, text: str) -> list[str]:
        """The words of ``text`` that ``encode`` spells (those with a pronunciation)."""
        return [w for w in normalize_text(text).split() if self.pronunciations(w)]

    def decode(self, ids: Iterable[int]) -> str:
        """ids (no blanks, repeats already collapsed) -> phones, a word's joined by
        "-": "DH-AH K-AE-T"."""
        symbols = [self.symbols[i] for i in ids if i != 0]
        words = itertools.groupby(symbols, key=lambda s: s == " ")
        return " ".join("-".join(word) for space, word in words if not space)

    def spellings(self, word: str) -> list[list[str]]:
        return [list(p) for p in self.pronunciations(word)]

    def to_dict(self) -> dict:
        extra = {w: [list(p) for p in ps] for w, ps in self.extra.entries.items()}
        return {"type": "phone", "symbols": self.symbols, "lexicon": extra}

    @classmethod
    def from_dict(cls, d: dict) -> PhoneTokenizer:
        return cls(list(d["symbols"]), Lexicon(d.get("lexicon", {})))


Tokenizer = CharTokenizer | PhoneTokenizer


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """The tokenizer a checkpoint or export stores (``to_dict``)."""
    kind = d.get("type", "char")
    if kind == "char":
        return CharTokenizer.from_dict(d)
    if kind == "phone":
        return PhoneTokenizer.from_dict(d)
    raise ValueError(f"unknown tokenizer type {kind!r} (char or phone)")
