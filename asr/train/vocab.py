"""A run's vocabulary: characters of its training texts, or ARPAbet phones through
the CMU dictionary and the run's own lexicon (``data.units``), and the CTC head of
a character checkpoint turned into a phone model's."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from asr.data.lexicon import Lexicon
from asr.data.text import BLANK, CharTokenizer, PhoneTokenizer, Tokenizer
from asr.decode.decoder import PHONE_MODEL_DECODING
from asr.train.config import DataConfig, TrainConfig

# a phone's row of a character model's head to start from: the letter that most
# often spells it (the others start as new symbols)
START_LETTER = {
    **{p: p.lower() for p in "BDFGKLMNPRSTVWYZ"},
    "HH": "h",
    "JH": "j",
    "CH": "c",
    "AA": "o",
    "AE": "a",
    "AH": "u",
    "EH": "e",
    "IH": "i",
}


def model_decoding(tokenizer: Tokenizer) -> dict:
    """The decoding defaults a trained model carries: a phone model's greedy
    output is phones, so it decodes with its lexicon and the general LM."""
    return dict(PHONE_MODEL_DECODING) if isinstance(tokenizer, PhoneTokenizer) else {}


def build_tokenizer(cfg: DataConfig, texts: Iterable[str]) -> Tokenizer:
    """A new run's vocabulary; a phone run checks that every word is pronounced."""
    if cfg.units == "char":
        return CharTokenizer.build(texts)
    tokenizer = PhoneTokenizer.build(read_lexicon(cfg))
    check_pronounced(tokenizer, texts)
    return tokenizer


def read_lexicon(cfg: DataConfig) -> Lexicon:
    return Lexicon.read(cfg.lexicon) if cfg.lexicon else Lexicon()


def check_pronounced(tokenizer: PhoneTokenizer, texts: Iterable[str]) -> None:
    """Every training word needs a pronunciation: a word without one would be
    dropped from its utterance's target, silently teaching the model that its
    sounds are nothing."""
    unknown: dict[str, int] = {}
    for text in texts:
        for word in tokenizer.unknown_words(text):
            unknown[word] = unknown.get(word, 0) + 1
    if unknown:
        common = sorted(unknown, key=lambda w: -unknown[w])[:10]
        raise ValueError(
            f"{len(unknown)} training word(s) have no pronunciation in the CMU "
            f"dictionary or data.lexicon, e.g. {common}: add them to a CMUdict-"
            "format file given as data.lexicon=FILE (recipes/english/lexicon.py "
            "writes one with festival's letter-to-sound rules)"
        )


def phone_head_from_chars(
    state: dict, chars: CharTokenizer, phones: PhoneTokenizer
) -> dict:
    """A character checkpoint's weights with its CTC head re-cut for ``phones``:
    blank and space keep their rows, a phone starts from its letter's row
    (``START_LETTER``), the rest from zero weights and the lowest trained bias."""
    weight, bias = state["head.proj.weight"], state["head.proj.bias"]
    new_w = weight.new_zeros(len(phones), weight.shape[1])
    new_b = bias[1:].min().repeat(len(phones))
    for k, symbol in enumerate(phones.symbols):
        source = symbol if symbol in (BLANK, " ") else START_LETTER.get(symbol)
        if source in chars.symbols:
            new_w[k] = weight[chars.symbols.index(source)]
            new_b[k] = bias[chars.symbols.index(source)]
    return {**state, "head.proj.weight": new_w, "head.proj.bias": new_b}


def fine_tune_vocab(
    path: str, tokenizer: Tokenizer, state: dict, cfg: TrainConfig, texts
) -> tuple[Tokenizer, dict]:
    """The vocabulary and weights a fine-tuning run starts from ``path``'s.

    A character run keeps the checkpoint's characters, which must cover every
    character of ``texts`` (or, with trainer.init_add_chars, get the missing
    ones appended). A phone run from a character checkpoint re-cuts the head
    (``phone_head_from_chars``); from a phone checkpoint it keeps its lexicon
    under data.lexicon's entries. Either way every word must be pronounced."""
    if cfg.data.units == "phone":
        lexicon = read_lexicon(cfg.data)
        if isinstance(tokenizer, PhoneTokenizer):
            lexicon.entries = {**tokenizer.extra.entries, **lexicon.entries}
            phones = PhoneTokenizer(tokenizer.symbols, lexicon)
        else:
            phones = PhoneTokenizer.build(lexicon)
            state = phone_head_from_chars(state, tokenizer, phones)
        check_pronounced(phones, texts)
        return phones, state
    if isinstance(tokenizer, PhoneTokenizer):
        raise ValueError(f"trainer.init_from={path} is a phone model: data.units=phone")
    unknown = set()
    for text in texts:
        unknown |= set(text) - set(tokenizer.symbols)
    if unknown and not cfg.trainer.init_add_chars:
        raise ValueError(
            f"trainer.init_from={path}: the training texts use characters its "
            f"vocabulary lacks: {sorted(unknown)} (trainer.init_add_chars=true "
            "appends them)"
        )
    if unknown:
        tokenizer = CharTokenizer([*tokenizer.symbols, *sorted(unknown)])
        state = _grow_head(state, len(tokenizer))
    return tokenizer, state


def _grow_head(state: dict, vocab_size: int) -> dict:
    """The CTC head's weights with rows appended for new symbols (ids kept): zero
    weights and the lowest bias of the trained symbols, so that a new symbol
    starts as the least likely one and the trained outputs are unchanged."""
    weight, bias = state["head.proj.weight"], state["head.proj.bias"]
    n_new = vocab_size - len(bias)
    state = dict(state)
    state["head.proj.weight"] = torch.cat(
        [weight, weight.new_zeros(n_new, weight.shape[1])]
    )
    state["head.proj.bias"] = torch.cat([bias, bias[1:].min().repeat(n_new)])
    return state
