"""Pronunciations for phone models: the CMU dictionary that the ``pocketsphinx``
wheel ships (126k words, 134k pronunciations, ARPAbet without stress marks;
BSD-style licence) and the user's own entries in the same format, one
``word PH PH ...`` per line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

# the 39 ARPAbet phones of the CMU dictionary
_ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH "
    "T TH UH UW V W Y Z ZH"
)
PHONES = tuple(_ARPABET.split())
_PHONE_SET = frozenset(PHONES)
_VARIANT = re.compile(r"\(\d+\)$")  # "read(2)": the second pronunciation of "read"
_STRESS = str.maketrans("", "", "0123456789")  # "AH0": stress marks, if any

Pronunciation = tuple[str, ...]


class Lexicon:
    """word -> its pronunciations, the first one the most common."""

    def __init__(self, entries: Mapping[str, Iterable[Pronunciation]] = ()):
        self.entries: dict[str, list[Pronunciation]] = {}
        for word, prons in dict(entries).items():
            for pron in prons:
                self.add(word, pron)

    def add(self, word: str, pron: Iterable[str]) -> None:
        pron = tuple(pron)
        if not pron or not _PHONE_SET.issuperset(pron):
            unknown = set(pron) - _PHONE_SET
            raise ValueError(f"{word!r}: not ARPAbet phones: {sorted(unknown) or '[]'}")
        variants = self.entries.setdefault(word, [])
        if pron not in variants:
            variants.append(pron)

    def __contains__(self, word: str) -> bool:
        return word in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def pronunciations(self, word: str) -> list[Pronunciation]:
        return self.entries.get(word, [])

    @classmethod
    def read(cls, path: str | Path) -> Lexicon:
        """A CMUdict-format file: ``word PH PH ...`` per line (``word(2)`` for a
        further pronunciation, stress digits dropped, ``;;;`` comments)."""
        lexicon = cls()
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                fields = line.split("#")[0].split()
                if not fields or fields[0].startswith(";;;"):
                    continue
                word = _VARIANT.sub("", fields[0]).lower()
                phones = " ".join(fields[1:]).translate(_STRESS).upper().split()
                try:
                    lexicon.add(word, phones)
                except ValueError as err:
                    raise ValueError(f"{path}:{n}: {err}") from None
        return lexicon

    def write(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for word, prons in sorted(self.entries.items()):
                for k, pron in enumerate(prons):
                    name = word if k == 0 else f"{word}({k + 1})"
                    f.write(f"{name} {' '.join(pron)}\n")


def cmudict_path() -> Path:
    """The CMU dictionary inside the pocketsphinx package."""
    import pocketsphinx  # lazily: only phone models need it

    path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    if not path.is_file():
        raise ValueError(f"{path}: pocketsphinx's CMU dictionary is missing")
    return path


_CMUDICT: Lexicon | None = None


def cmudict() -> Lexicon:
    """The CMU dictionary, read once per process (about a second)."""
    global _CMUDICT
    if _CMUDICT is None:
        _CMUDICT = Lexicon.read(cmudict_path())
    return _CMUDICT
