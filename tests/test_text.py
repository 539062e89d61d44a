from __future__ import annotations

import pytest

from asr.data.text import BLANK, CharTokenizer, normalize_text


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("HELLO World", "hello world"),
        ("  Enter   SEVEN\t\n", "enter seven"),
        ("Don't stop!", "don't stop"),
        ("'quoted' words, here.", "quoted words here"),
        ("Café Noël", "cafe noel"),
        ("Straße", "strasse"),
        ("twenty-three", "twenty three"),
        ("", ""),
        ("?!.", ""),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_tokenizer_round_trip_and_blank():
    tok = CharTokenizer.build(["ENTER SEVEN", "rubout f m q"])
    assert tok.symbols[0] == BLANK
    ids = tok.encode("Enter seven")
    assert 0 not in ids
    assert tok.decode(ids) == "enter seven"
    again = CharTokenizer.from_dict(tok.to_dict())
    assert again.symbols == tok.symbols


def test_unknown_characters_are_dropped():
    tok = CharTokenizer.build(["ab c"])
    assert tok.decode(tok.encode("a z b")) == "a b"


def test_blank_must_come_first():
    with pytest.raises(ValueError):
        CharTokenizer(["a", BLANK])
