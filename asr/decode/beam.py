"""CTC beam search on numpy log-probs with flashlight-text's decoders directly
(the library torchaudio's ``ctc_decoder`` wraps), so that decoding needs no torch:
lexicon-constrained with a KenLM word LM (a trie of the lexicon's spellings, each
word's unigram LM score smeared along its prefixes), or lexicon-free.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from pathlib import Path

import numpy as np
from flashlight.lib.text.decoder import (
    CriterionType,
    KenLM,
    LexiconDecoder,
    LexiconDecoderOptions,
    LexiconFreeDecoder,
    LexiconFreeDecoderOptions,
    SmearingMode,
    Trie,
    ZeroLM,
)
from flashlight.lib.text.dictionary import Dictionary, create_word_dict, load_words

UNK_WORD = "<unk>"


class FlashlightCTC:
    """One configured flashlight CTC decoder; ``decode`` gives, per utterance,
    up to ``nbest`` (token ids, words, score) with blanks and repeats removed."""

    def __init__(
        self,
        tokens: list[str],
        blank: str,
        separator: str,
        lexicon: str | None,
        lm: str | None,
        nbest: int,
        **search,
    ):
        """``search``: beam_size, beam_threshold, lm_weight, word_score and
        optionally beam_size_token (tokens tried per frame; 0 or absent: all)."""
        self.nbest, self.tokens = nbest, Dictionary(tokens)
        self.blank = self.tokens.get_index(blank)
        sep = self.tokens.get_index(separator)
        common = dict(
            beam_size=search["beam_size"],
            beam_size_token=search.get("beam_size_token") or self.tokens.index_size(),
            beam_threshold=search["beam_threshold"],
            lm_weight=search["lm_weight"],
            sil_score=0.0,
            log_add=False,
            criterion_type=CriterionType.CTC,
        )
        if lexicon is None:
            if lm is not None:
                raise ValueError("a word LM needs a lexicon (--lexicon)")
            self.words, self.lm = None, ZeroLM()
            opts = LexiconFreeDecoderOptions(**common)
            self.decoder = LexiconFreeDecoder(opts, self.lm, sep, self.blank, [])
            return
        spellings = load_words(lexicon)
        self.words = create_word_dict(spellings)
        self.lm = _load_lm(lm, self.words)
        trie = self._trie(spellings, sep)
        opts = LexiconDecoderOptions(
            **common, word_score=search["word_score"], unk_score=float("-inf")
        )
        unk = self.words.get_index(UNK_WORD)
        self.decoder = LexiconDecoder(
            opts, trie, self.lm, sep, self.blank, unk, [], False
        )

    def _trie(self, spellings: dict, sep: int) -> Trie:
        trie = Trie(self.tokens.index_size(), sep)
        start = self.lm.start(False)
        scored = []
        for word, variants in spellings.items():
            index = self.words.get_index(word)
            scored.append((self.lm.score(start, index)[1], index, variants))
        # a trie node keeps at most 6 words (flashlight's limit): a phone model's
        # homophones ("to", "too", "two", ...) go in most probable first
        scored.sort(key=lambda x: -x[0])
        with _quiet_stderr():  # flashlight says so on stderr for each word dropped
            for score, index, variants in scored:
                for spelling in variants:
                    ids = [self.tokens.get_index(t) for t in spelling]
                    trie.insert(ids, index, score)
        trie.smear(SmearingMode.MAX)
        return trie

    def decode(
        self, log_probs: np.ndarray, lens: np.ndarray
    ) -> list[list[tuple[list[int], list[str], float]]]:
        """log_probs: shape = (B, T, V) float32; lens (B,) -> B n-best lists."""
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        b, t, v = emissions.shape
        out = []
        for k in range(b):
            ptr = emissions.ctypes.data + k * t * v * emissions.itemsize
            results = self.decoder.decode(ptr, int(lens[k]), v)[: self.nbest]
            out.append([self._result(r) for r in results])
        return out

    def _result(self, r) -> tuple[list[int], list[str], float]:
        ids = [i for i, _ in itertools.groupby(r.tokens) if i != self.blank]
        words = (
            [self.words.get_entry(w) for w in r.words if w >= 0] if self.words else []
        )
        return ids, words, float(r.score)


def _load_lm(path: str | None, words: Dictionary):
    if path is None:
        return ZeroLM()
    if not Path(path).is_file():
        raise ValueError(f"{path}: no such language model file")
    with _quiet_stderr():  # KenLM prints a progress bar while loading
        return KenLM(str(path), words)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level writes to stderr (file descriptor 2) for a moment."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
