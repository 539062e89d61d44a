"""Beam search, lexicon, LM and word timings on hand-built and real log-probs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from flashlight.lib.text.dictionary import load_words

from asr.data.text import BLANK, CharTokenizer
from asr.decode.alignment import align_words
from asr.decode.decoder import DecodingOptions, build_decoder, greedy_decode, lm_words
from asr.decode.lm import estimate, write_arpa

TOK = CharTokenizer([BLANK, " ", "a", "b", "o", "t"])
IDS = {s: i for i, s in enumerate(TOK.symbols)}


def emissions(frames: list[dict[str, float]]) -> torch.Tensor:
    """Per-frame probabilities (missing symbols share what is left) -> log-probs."""
    rows = []
    for probs in frames:
        rest = (1 - sum(probs.values())) / (len(TOK) - len(probs))
        rows.append([math.log(probs.get(s, rest)) for s in TOK.symbols])
    return torch.tensor(rows)[None]


# "bat" is acoustically slightly ahead of "bot", but only "bot" is a word.
AMBIGUOUS = emissions(
    [
        {"b": 0.9},
        {BLANK: 0.9},
        {"a": 0.5, "o": 0.4},
        {BLANK: 0.9},
        {"t": 0.9},
        {BLANK: 0.9},
    ]
)


def test_lexicon_free_beam_matches_greedy_when_unambiguous():
    lp = emissions([{"a": 0.8}, {BLANK: 0.8}, {"b": 0.8}, {" ": 0.8}, {"t": 0.8}])
    beam = build_decoder(DecodingOptions(decoder="beam", beam_size=10), TOK)
    ((best,),) = beam.decode(lp, torch.tensor([5]))
    assert best.text == greedy_decode(lp, torch.tensor([5]), TOK)[0].text == "ab t"


def test_lexicon_constrains_the_output(tmp_path):
    assert greedy_decode(AMBIGUOUS, torch.tensor([6]), TOK)[0].text == "bat"
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("bot\tb o t |\nto\tt o |\n")
    beam = build_decoder(DecodingOptions(decoder="beam", lexicon=str(lexicon)), TOK)
    ((best,),) = beam.decode(AMBIGUOUS, torch.tensor([6]))
    assert best.text == "bot"


def test_beam_size_token_limits_the_tokens_tried_per_frame(tmp_path):
    # "bot" needs frame 3's second-likeliest token ("o" after "a")
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("bot\tb o t |\n")
    texts = {}
    for n in (1, 2):
        opts = DecodingOptions(decoder="beam", lexicon=str(lexicon), beam_size_token=n)
        ((best,),) = build_decoder(opts, TOK).decode(AMBIGUOUS, torch.tensor([6]))
        texts[n] = best.text
    assert texts == {1: "", 2: "bot"}


def test_lm_words_build_the_lexicon_and_nbest(tmp_path):
    lm = tmp_path / "lm.arpa"
    write_arpa(estimate(["bot", "bot", "bot", "bat"], 2), lm)
    assert sorted(lm_words(lm)) == ["bat", "bot"]
    opts = DecodingOptions(decoder="beam", lm=str(lm), lm_weight=0.0, nbest=2)
    ((first, second),) = build_decoder(opts, TOK).decode(AMBIGUOUS, torch.tensor([6]))
    assert [first.text, second.text] == ["bat", "bot"]
    assert first.score >= second.score
    # a strong LM that has seen "bot" three times as often flips the decision
    opts = DecodingOptions(decoder="beam", lm=str(lm), lm_weight=3.0)
    ((best,),) = build_decoder(opts, TOK).decode(AMBIGUOUS, torch.tensor([6]))
    assert best.text == "bot"


def test_the_most_probable_of_many_homophones_is_kept(tmp_path, capfd):
    # flashlight's trie keeps 6 words per spelling: with 8 words spelt "b o t"
    # (a phone model's "to", "too", "two", ...), the LM's favourite must be one
    words = [f"w{k}" for k in range(8)]
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w}\tb o t |\n" for w in words))
    # the favourite: the word flashlight's lexicon reader gives last
    favourite = list(load_words(str(lexicon)))[-1]
    lm = tmp_path / "lm.arpa"
    write_arpa(estimate([*words, *[favourite] * 3], 2), lm)
    opts = DecodingOptions(decoder="beam", lexicon=str(lexicon), lm=str(lm))
    ((best,),) = build_decoder(opts, TOK).decode(AMBIGUOUS, torch.tensor([6]))
    assert best.text == favourite
    assert "Trie" not in capfd.readouterr().err  # the dropped words, quietly


def test_greedy_with_an_lm_is_refused():
    with pytest.raises(ValueError, match="beam"):
        build_decoder(DecodingOptions(lm="x.arpa"), TOK)
    with pytest.raises(ValueError, match="unknown decoder"):
        build_decoder(DecodingOptions(decoder="viterbi"), TOK)


def test_options_file_round_trip(tmp_path):
    opts = DecodingOptions(
        decoder="beam", lm="lm.arpa", lm_weight=1.25, word_score=-0.5
    )
    opts.save(tmp_path / "d.json")
    assert DecodingOptions.from_file(tmp_path / "d.json") == opts
    (tmp_path / "bad.json").write_text('{"lm_wieght": 1}')
    with pytest.raises(ValueError, match="lm_wieght"):
        DecodingOptions.from_file(tmp_path / "bad.json")


def test_word_timings_follow_the_alignment():
    # frames: a a _ _ b _ " " _ t t _ ; 0.04 s per frame
    lp = emissions(
        [
            {"a": 0.9},
            {"a": 0.9},
            {BLANK: 0.9},
            {BLANK: 0.9},
            {"b": 0.6},
            {BLANK: 0.9},
            {" ": 0.9},
            {BLANK: 0.9},
            {"t": 0.9},
            {"t": 0.9},
            {BLANK: 0.9},
        ]
    )[0]
    words = align_words(
        lp, "ab t", TOK, frame_seconds=0.04, offset=10.0, start_pad=0.0, end_pad=0.0
    )
    assert [w.word for w in words] == ["ab", "t"]
    assert (words[0].start, words[0].end) == (10.0, 10.2)
    assert (words[1].start, words[1].end) == (10.32, 10.4)
    assert words[0].confidence == pytest.approx((0.9 * 2 + 0.6) / 3, abs=1e-4)
    assert words[1].confidence == pytest.approx(0.9, abs=1e-4)

    # padding extends into blank frames but never over the next token
    padded = align_words(
        lp, "ab t", TOK, frame_seconds=0.04, offset=10.0, start_pad=0.04, end_pad=0.08
    )
    assert (padded[0].start, padded[0].end) == (10.0, 10.24)  # space at frame 6
    assert (padded[1].start, padded[1].end) == (10.28, 10.44)  # space ends at 7


def test_binary_lm_without_lexicon_asks_for_one(tmp_path):
    binary = tmp_path / "lm.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code format version 5\0" * 4)
    with pytest.raises(ValueError, match="--lexicon"):
        build_decoder(DecodingOptions(decoder="beam", lm=str(binary)), TOK)


def test_an_lms_lexicon_is_spelled_once_and_kept_in_the_cache(tmp_path, monkeypatch):
    from asr.decode import decoder

    monkeypatch.setenv("ASR_CACHE_DIR", str(tmp_path / "cache"))
    lm = tmp_path / "lm.arpa"
    write_arpa(estimate(["bot", "bot", "bot", "bat"], 2), lm)
    opts = DecodingOptions(decoder="beam", lm=str(lm), lm_weight=3.0)
    first = decoder.lm_lexicon(lm, TOK, tmp_path)
    assert Path(first).parent == tmp_path / "cache" / "lexicons"

    def no_spelling(*args):
        raise AssertionError("spelt again")

    monkeypatch.setattr(decoder, "write_lexicon", no_spelling)
    assert decoder.lm_lexicon(lm, TOK, tmp_path) == first  # read, not spelt
    ((best,),) = build_decoder(opts, TOK).decode(AMBIGUOUS, torch.tensor([6]))
    assert best.text == "bot"
    other = CharTokenizer([BLANK, " ", "a", "b", "o", "t", "'"])
    with pytest.raises(AssertionError, match="spelt again"):
        decoder.lm_lexicon(lm, other, tmp_path)  # another vocabulary
    write_arpa(estimate(["bot", "bat", "tab"], 2), lm)
    with pytest.raises(AssertionError, match="spelt again"):
        decoder.lm_lexicon(lm, TOK, tmp_path)  # the LM changed
    monkeypatch.undo()
    monkeypatch.setenv("ASR_CACHE_DIR", "/proc/no-cache-here")  # not writable
    assert decoder.lm_lexicon(lm, TOK, tmp_path) == str(tmp_path / "lexicon.txt")
