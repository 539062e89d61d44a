from __future__ import annotations

import argparse
import math

import pytest
import torch

from asr.cli.common import decoding_args, decoding_options
from asr.data.text import BLANK, CharTokenizer
from asr.decode.decoder import DecodingOptions, build_decoder, greedy_decode
from asr.decode.metrics import score

TOK = CharTokenizer([BLANK, " ", "a", "b", "c"])


def frames(*ids: int, n_vocab: int = 5) -> torch.Tensor:
    """One-hot-ish log-probs: the listed id gets 0.7 per frame."""
    lp = torch.full((len(ids), n_vocab), math.log(0.3 / (n_vocab - 1)))
    for t, i in enumerate(ids):
        lp[t, i] = math.log(0.7)
    return lp


def test_greedy_merges_repeats_and_drops_blanks():
    # a a _ a b b _ _ c  ->  "aabc" ("a a" around a blank are two letters)
    lp = frames(2, 2, 0, 2, 3, 3, 0, 0, 4)
    (hyp,) = greedy_decode(lp[None], torch.tensor([9]), TOK)
    assert hyp.text == "aabc"
    assert hyp.tokens == [2, 2, 3, 4]
    assert hyp.score == pytest.approx(9 * math.log(0.7), rel=1e-5)


def test_greedy_respects_lengths_in_a_batch():
    a = frames(2, 1, 3, 3, 0)
    b = frames(4, 4, 4, 4, 4)  # padding rows beyond length 1 must be ignored
    lp = torch.stack([a, b])
    hyps = greedy_decode(lp, torch.tensor([5, 1]), TOK)
    assert [h.text for h in hyps] == ["a b", "c"]


def test_greedy_all_blank_is_empty():
    (hyp,) = greedy_decode(frames(0, 0, 0)[None], torch.tensor([3]), TOK)
    assert hyp.text == "" and hyp.tokens == []


def test_greedy_starts_a_word_after_a_long_pause():
    # a _ _ _ b b _ _ a _ _ _ _ " " _ _ _ c
    lp = frames(2, 0, 0, 0, 3, 3, 0, 0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 4)[None]
    n = torch.tensor([lp.shape[1]])
    assert greedy_decode(lp, n, TOK)[0].text == "aba c"  # no pause rule
    # 3 blanks part a|b and the spaces: one space each, never two
    (hyp,) = greedy_decode(lp, n, TOK, pause_frames=3)
    assert hyp.text == "a ba c"
    assert hyp.tokens == [2, 1, 3, 2, 1, 4]
    assert greedy_decode(lp, n, TOK, pause_frames=4)[0].text == "aba c"
    # a leading or trailing pause adds nothing
    edge = frames(0, 0, 0, 0, 2, 0, 0, 0, 0)[None]
    assert greedy_decode(edge, torch.tensor([9]), TOK, pause_frames=2)[0].text == "a"


def test_the_word_pause_option_counts_in_the_model_s_frames():
    opts = DecodingOptions()  # word_pause 0.4 s
    assert build_decoder(opts, TOK, frame_seconds=0.04).pause_frames == 10
    assert build_decoder(opts, TOK, frame_seconds=0.03).pause_frames == 14
    assert build_decoder(opts, TOK).pause_frames == 0  # frame step unknown
    off = DecodingOptions(word_pause=0.0)
    assert build_decoder(off, TOK, frame_seconds=0.04).pause_frames == 0
    with pytest.raises(ValueError, match="word_pause"):
        DecodingOptions(word_pause=-1.0)
    parser = argparse.ArgumentParser()
    decoding_args(parser)
    assert decoding_options(parser.parse_args([])).word_pause == 0.4
    flag = parser.parse_args(["--word-pause", "0"])
    assert decoding_options(flag, {"pad_ms": 200.0}).word_pause == 0.0


def test_wer_known_answers():
    # 1 substitution + 1 deletion in 4 words; 1 insertion in 2 words
    report = score(
        ["the cat sat down", "hello world"], ["the bat sat", "hello big world"]
    )
    first, second = report.utterances
    assert (first.substitutions, first.deletions, first.insertions) == (1, 1, 0)
    assert (second.substitutions, second.deletions, second.insertions) == (0, 0, 1)
    assert report.wer == pytest.approx(3 / 6)


def test_wer_normalises_case_and_punctuation():
    assert score(["Hello, World!"], ["hello world"]).wer == 0.0


def test_cer_known_answer():
    report = score(["abcd"], ["abxd"])
    assert report.cer == pytest.approx(1 / 4)
    assert report.wer == 1.0


def test_empty_reference_counts_insertions():
    report = score(["", "a b"], ["x y", "a b"])
    assert report.utterances[0].insertions == 2
    assert report.wer == pytest.approx(2 / 2)
