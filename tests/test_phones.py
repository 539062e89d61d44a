"""Phone models: the CMU-dictionary lexicon, the phone tokenizer, a phone run's
vocabulary and head, lexicon + LM decoding of phones, and where they are refused."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest
import torch

from asr.cli.common import decoding_args, decoding_options
from asr.data.lexicon import PHONES, Lexicon, cmudict
from asr.data.text import (
    BLANK,
    CharTokenizer,
    PhoneTokenizer,
    tokenizer_from_dict,
)
from asr.decode.decoder import (
    PHONE_MODEL_DECODING,
    DecodingOptions,
    build_decoder,
    greedy_decode,
    model_decoding_defaults,
)
from asr.decode.lm import estimate, write_arpa
from asr.model.checkpoint import load_model, save_model
from asr.train.config import TrainConfig
from asr.train.trainer import Trainer, fit
from asr.train.vocab import START_LETTER, check_pronounced, phone_head_from_chars
from tests.test_training import tiny_config

PH = PhoneTokenizer.build()


def test_lexicon_reads_cmudict_format(tmp_path):
    path = tmp_path / "extra.dict"
    path.write_text(";;; a comment\nREAD R EH1 D\nread(2) R IY0 D  # past\n\n")
    lex = Lexicon.read(path)
    assert lex.pronunciations("read") == [("R", "EH", "D"), ("R", "IY", "D")]
    lex.write(tmp_path / "again.dict")
    assert Lexicon.read(tmp_path / "again.dict").entries == lex.entries
    path.write_text("cat K AE T\ndog D OG G\n")
    with pytest.raises(ValueError, match=r"extra.dict:2: 'dog': not ARPAbet.*OG"):
        Lexicon.read(path)


def test_cmudict_comes_from_pocketsphinx():
    lex = cmudict()
    assert len(lex) > 100_000
    assert lex.pronunciations("the")[0] == ("DH", "AH")
    assert ("D", "OW", "N", "T") in lex.pronunciations("don't")
    assert {p for prons in lex.entries.values() for pr in prons for p in pr} == set(
        PHONES
    )


def test_phone_tokenizer_spells_words_with_their_first_pronunciation():
    ids = PH.encode("The cat, READ!")
    spelt = [PH.symbols[i] for i in ids]
    assert spelt == ["DH", "AH", " ", "K", "AE", "T", " ", "R", "EH", "D"]
    assert PH.decode(ids) == "DH-AH K-AE-T R-EH-D"
    assert PH.spellings("read") == [["R", "EH", "D"], ["R", "IY", "D"]]
    assert PH.unknown_words("the kirkleatham yeast") == ["kirkleatham"]
    # a word nobody pronounces is left out of the target, and of the words
    assert PH.decode(PH.encode("the kirkleatham yeast")) == "DH-AH Y-IY-S-T"
    assert PH.target_words("the kirkleatham yeast") == ["the", "yeast"]
    extra = Lexicon({"kirkleatham": [("K", "ER", "K", "L", "IY", "TH", "AH", "M")]})
    own = PhoneTokenizer.build(extra)
    assert own.unknown_words("the kirkleatham yeast") == []
    again = tokenizer_from_dict(own.to_dict())
    assert isinstance(again, PhoneTokenizer)
    assert again.symbols == own.symbols and again.extra.entries == extra.entries
    with pytest.raises(ValueError, match="unknown tokenizer type"):
        tokenizer_from_dict({"type": "bpe", "symbols": [BLANK]})
    with pytest.raises(ValueError, match="not ARPAbet"):
        PhoneTokenizer([BLANK, " ", "AA", "Q"])


def emissions(tokens: list[str], tok) -> torch.Tensor:
    """One confident frame per token, a blank between: (1, T, V) log-probs."""
    rows = []
    for t in tokens:
        for s in (t, BLANK):
            rows.append(
                [math.log(0.9 if x == s else 0.1 / (len(tok) - 1)) for x in tok.symbols]
            )
    return torch.tensor(rows)[None]


@pytest.mark.parametrize("favoured", ["read", "red"])
def test_lm_picks_among_homophones_of_a_phone_model(tmp_path, favoured):
    lp = emissions(["R", "EH", "D"], PH)
    assert greedy_decode(lp, torch.tensor([6]), PH)[0].text == "R-EH-D"
    lm = tmp_path / "lm.arpa"
    other = "red" if favoured == "read" else "read"
    write_arpa(estimate([favoured] * 5 + [other, "the cat"], 2), lm)
    opts = DecodingOptions(decoder="beam", lm=str(lm), lm_weight=1.0)
    ((best,),) = build_decoder(opts, PH).decode(lp, torch.tensor([6]))
    assert best.text == favoured


def test_a_phone_model_decodes_with_the_lm_unless_greedy_is_asked_for():
    assert DecodingOptions.for_model(PHONE_MODEL_DECODING).lm == "english"
    with pytest.raises(ValueError, match="default LM"):
        DecodingOptions.for_model({"lm": "/home/someone/lm.arpa"})
    parser = argparse.ArgumentParser()
    decoding_args(parser)
    args = parser.parse_args([])
    assert decoding_options(args, PHONE_MODEL_DECODING).decoder == "beam"
    greedy = decoding_options(
        parser.parse_args(["--decoder", "greedy"]), PHONE_MODEL_DECODING
    )
    assert (greedy.decoder, greedy.lm) == ("greedy", None)
    wide = decoding_options(
        parser.parse_args(["--beam-size-token", "41"]), PHONE_MODEL_DECODING
    )
    assert (wide.beam_size, wide.beam_size_token) == (400, 41)


def test_a_phone_model_saved_before_a_default_existed_gets_it():
    class Saved:  # a phone checkpoint from before beam_size was a phone default
        decoding_defaults = {"decoder": "beam", "lm": "english", "word_score": -1.0}

    defaults = model_decoding_defaults(Saved(), PH)
    assert defaults["beam_size"] == PHONE_MODEL_DECODING["beam_size"]
    assert defaults["word_score"] == -1.0  # what the file stores still wins
    chars = CharTokenizer([BLANK, " ", "a"])
    assert model_decoding_defaults(Saved(), chars) == Saved.decoding_defaults


def test_a_character_head_is_recut_for_phones():
    chars = CharTokenizer([BLANK, " ", "a", "b", "t", "z"])
    state = {
        "head.proj.weight": torch.arange(12.0).reshape(6, 2),
        "head.proj.bias": torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0, 0.5]),
    }
    new = phone_head_from_chars(state, chars, PH)
    w, b = new["head.proj.weight"], new["head.proj.bias"]
    assert w.shape == (len(PH), 2)
    for phone, letter in [(BLANK, BLANK), (" ", " "), ("AE", "a"), ("B", "b")]:
        assert torch.equal(
            w[PH.symbols.index(phone)],
            state["head.proj.weight"][chars.symbols.index(letter)],
        )
        assert (
            b[PH.symbols.index(phone)]
            == state["head.proj.bias"][chars.symbols.index(letter)]
        )
    assert START_LETTER["T"] == "t" and START_LETTER["Z"] == "z"
    fresh = PH.symbols.index("IY")  # no letter of its own: a new symbol
    assert not w[fresh].any() and b[fresh] == 0.5


def test_every_training_word_needs_a_pronunciation():
    check_pronounced(PH, ["the cat", "read it"])
    with pytest.raises(ValueError, match=r"1 training word.*kirkleatham.*lexicon"):
        check_pronounced(PH, ["the cat", "kirkleatham yeast", "kirkleatham"])


def phone_config(manifest, out_dir, epochs: int) -> TrainConfig:
    cfg = tiny_config(manifest, out_dir, epochs=epochs, augment=False)
    cfg.data.units = "phone"
    return cfg


def test_a_phone_run_trains_saves_and_loads_a_phone_model(
    an4_manifest, tmp_path, caplog
):
    caplog.set_level("INFO")
    best = fit(phone_config(an4_manifest, tmp_path / "run", epochs=2))
    model, tok, meta = load_model(best)
    assert isinstance(tok, PhoneTokenizer) and tok.symbols == PH.symbols
    assert meta["decoding"] == PHONE_MODEL_DECODING
    assert model.decoding_defaults["lm"] == "english"
    assert "dev PER" in caplog.text  # validated in phones, not words
    # a run's own pronunciations travel in the checkpoint
    tok.extra.add("zorp", ["Z", "AO", "R", "P"])
    save_model(tmp_path / "own.pt", model, tok, meta)
    assert load_model(tmp_path / "own.pt")[1].spellings("zorp") == [
        ["Z", "AO", "R", "P"]
    ]


def test_a_phone_run_fine_tunes_a_character_checkpoint(an4_manifest, tmp_path):
    from asr.model.bundled import default_model_path

    bundled, chars, _ = load_model(default_model_path())
    cfg = phone_config(an4_manifest, tmp_path / "ft", epochs=1)
    cfg.model, cfg.features = bundled.cfg, bundled.feature_cfg
    cfg.trainer.init_from = str(default_model_path())
    trainer = Trainer(cfg)
    assert isinstance(trainer.tokenizer, PhoneTokenizer)
    got = trainer.model.state_dict()
    old = bundled.float().state_dict()
    for name in old:  # everything but the head is the checkpoint's
        if not name.startswith("head."):
            assert torch.equal(got[name], old[name]), name
    k = chars.symbols.index("s")
    assert torch.equal(
        got["head.proj.weight"][PH.symbols.index("S")], old["head.proj.weight"][k]
    )
    # and back to characters from a phone checkpoint is refused
    save_model(tmp_path / "phones.pt", trainer.model, trainer.tokenizer, {})
    char_cfg = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, units="char")
    )
    char_cfg.trainer.init_from = str(tmp_path / "phones.pt")
    with pytest.raises(ValueError, match="is a phone model"):
        Trainer(char_cfg)


def test_a_phone_run_stops_on_words_without_pronunciation(an4_manifest, tmp_path):
    lines = an4_manifest.read_text().splitlines()
    odd = lines[0].replace('"text": "', '"text": "zorpish ')
    an4_manifest.write_text("\n".join([*lines, odd]) + "\n")
    cfg = phone_config(an4_manifest, tmp_path / "run", epochs=1)
    with pytest.raises(ValueError, match="zorpish"):
        Trainer(cfg)
    own = tmp_path / "own.dict"
    own.write_text("zorpish Z AO R P IH SH\n")
    cfg.data.lexicon = str(own)
    assert Trainer(cfg).tokenizer.spellings("zorpish") == [
        ["Z", "AO", "R", "P", "IH", "SH"]
    ]


def test_a_phone_model_streams_through_its_lexicon_decoder():
    from asr.audio.files import load_audio
    from asr.cli.stream import phone_decoder
    from asr.decode.decoder import BeamSearchDecoder, Hypothesis
    from asr.features.frontend import FeatureConfig
    from asr.model.acoustic import ASRModel, ModelConfig
    from asr.stream.recognizer import StreamingRecognizer
    from tests.conftest import clip_rows

    cfg = ModelConfig(conv_channels=4, hidden_size=16, n_layers=2)
    model = ASRModel(cfg, FeatureConfig(), len(PH)).eval()
    model.decoding_defaults = {}
    with pytest.raises(ValueError, match="streams with its lexicon decoder"):
        StreamingRecognizer(model, PH)
    model.decoding_defaults = {"lm": None}  # (the general LM: slow to build here)
    assert isinstance(phone_decoder(model, PH), BeamSearchDecoder)
    assert phone_decoder(model, CharTokenizer([BLANK, " ", "a"])) is None

    class Words:  # stands in for the lexicon decoder: says what it was given
        calls = 0

        def decode(self, lp, lens):
            Words.calls += 1
            return [[Hypothesis(f"words of {int(lens[0])} frames", [], 0.0)]]

    rec = StreamingRecognizer(model, PH, decoder=Words())
    wav = load_audio(clip_rows()[0][0])
    events = [e for k in range(0, len(wav), 1600) for e in rec.feed(wav[k : k + 1600])]
    events += rec.flush()
    texts = {e.type: e.text for e in events}
    assert texts["partial"].startswith("words of") and texts["final"].startswith(
        "words of"
    )
    assert Words.calls >= 2


def test_a_grammar_of_own_words_matches_a_phone_model(tmp_path):
    from asr.stream.grammar import CommandMatcher, Grammar, GrammarError

    path = tmp_path / "g.yaml"
    path.write_text(
        "commands:\n"
        '  - {phrase: "next page", action: {emit: {do: next}}}\n'
        '  - {phrase: "call mom", action: {emit: {do: call}}}\n'
    )
    matcher = CommandMatcher(Grammar.load(path), PH)
    said = ["K", "AO", "L", "-", "M", "AA", "M"]  # "call mom"
    lp = emissions([" " if p == "-" else p for p in said], PH)[0]
    m = matcher.match(lp)
    assert m is not None and m.text == "call mom" and m.confidence > 0.9
    other = emissions(["HH", "AH", "L", "OW"], PH)[0]  # "hello": neither phrase
    assert matcher.match(other) is None
    path.write_text('commands:\n  - {phrase: "zorp on", action: {emit: {do: z}}}\n')
    with pytest.raises(GrammarError, match=r"no pronunciation of \['zorp'\]"):
        CommandMatcher(Grammar.load(path), PH)


def test_a_phone_model_exports_with_its_lexicon_and_defaults(tmp_path):
    pytest.importorskip("onnxruntime")
    from asr.features.frontend import FeatureConfig
    from asr.model.acoustic import ASRModel, ModelConfig
    from asr.model.export import export_model
    from asr.model.exported import load_inference_model

    cfg = ModelConfig(conv_channels=4, hidden_size=16, n_layers=2)
    model = ASRModel(cfg, FeatureConfig(n_mels=40), len(PH)).eval()
    model.decoding_defaults = dict(PHONE_MODEL_DECODING)
    own = PhoneTokenizer.build(Lexicon({"zorp": [("Z", "AO", "R", "P")]}))
    exported, tok = load_inference_model(export_model(model, own, tmp_path / "p.onnx"))
    assert isinstance(tok, PhoneTokenizer) and tok.spellings("zorp")
    assert exported.decoding_defaults == PHONE_MODEL_DECODING


def test_decoded_words_get_encodes_tokens_without_reading_the_cmu_dictionary(
    tmp_path, monkeypatch
):
    from asr.data import text as text_module

    lm = tmp_path / "lm.arpa"
    said = "the read zorp cat"  # "the", "read": several pronunciations; "zorp": own
    write_arpa(estimate([said, "live wind"], 2), lm)
    tok = PhoneTokenizer.build(Lexicon({"zorp": [("Z", "AO", "R", "P")]}))
    opts = DecodingOptions(decoder="beam", lm=str(lm), lm_weight=1.0)
    decoder = build_decoder(opts, tok)
    want = {t: tok.encode(t) for t in (said, "live wind", "wind the cat")}

    def unread(*args):
        raise AssertionError("the CMU dictionary was consulted")

    monkeypatch.setattr(text_module, "cmudict", unread)
    for text, ids in want.items():
        assert decoder._word_tokens(text) == ids
    lp = emissions(["R", "EH", "D"], tok)
    ((best,),) = decoder.decode(lp, torch.tensor([6]))
    assert best.text == "read" and best.tokens == want["the read zorp cat"][3:6]
