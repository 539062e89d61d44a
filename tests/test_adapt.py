"""Speaker adaptation (asr/adapt.py, `asr adapt`)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import ROOT, TEST_DATA, clip_rows

from asr.cli.app import main
from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.data.text import CharTokenizer
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ModelConfig
from asr.model.checkpoint import load_model, save_model, stored_half
from asr.train.adapt import AdaptConfig, adapt, check_texts, step_batches

SHARED_FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"


def tiny_model(texts: list[str]) -> tuple[ASRModel, CharTokenizer]:
    tok = CharTokenizer.build(texts)
    torch.manual_seed(0)
    model = ASRModel(
        ModelConfig(conv_channels=4, hidden_size=32, n_layers=2, dropout=0.0),
        FeatureConfig(level_db=-25.0),
        len(tok),
    )
    model.frontend.cmvn.set_stats(torch.full((80,), -6.0), torch.full((80,), 3.0))
    return model.eval(), tok


def digit_clips() -> list[Utterance]:
    return [
        Utterance(str(TEST_DATA / "3_jackson_0.wav"), 0.4, "three", "jackson"),
        Utterance(str(TEST_DATA / "7_lucas_1.wav"), 0.4, "seven", "lucas"),
    ]


def test_step_batches_cover_every_clip_once_per_pass():
    batches = list(step_batches(7, 3, 7, random.Random(0)))
    assert [len(b) for b in batches] == [3] * 7
    flat = [i for b in batches for i in b]
    assert sorted(flat[:7]) == list(range(7))  # the first pass
    assert sorted(flat[7:14]) == list(range(7))  # the second
    # fewer clips than a batch: every step holds all of them
    assert all(sorted(b) == [0, 1] for b in step_batches(2, 32, 5, random.Random(0)))
    assert batches == list(step_batches(7, 3, 7, random.Random(0)))


def test_check_texts_names_what_the_model_cannot_spell():
    _, tok = tiny_model(["three seven"])
    check_texts(digit_clips(), tok)
    bad = [Utterance("x.wav", 1.0, "three4", "a")]
    with pytest.raises(ValueError, match=r"cannot spell \['4'\]"):
        check_texts(bad, tok)
    with pytest.raises(ValueError, match="empty transcript"):
        check_texts([Utterance("x.wav", 1.0, "", "a")], tok)
    with pytest.raises(ValueError, match="no clips"):
        check_texts([], tok)
    with pytest.raises(ValueError, match="steps"):
        AdaptConfig(steps=0)


def test_adapting_learns_the_clips_reproducibly_and_the_anchor_holds_back():
    clips = digit_clips()
    model, tok = tiny_model(["three seven"])
    start = [p.detach().clone() for p in model.parameters()]
    cfg = AdaptConfig(steps=40, lr=3e-3, speed_factors=(1.0,))
    result = adapt(model, tok, clips, cfg)
    assert not model.training
    assert len(result.losses) == 40 and result.n_utterances == 2
    assert result.speakers == ["jackson", "lucas"]
    assert result.losses[-1] < 0.5 * result.losses[0]

    def moved(m):
        return sum((p - s).square().sum().item() for p, s in zip(m.parameters(), start))

    again, _ = tiny_model(["three seven"])
    adapt(again, tok, clips, cfg)
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)
    held, _ = tiny_model(["three seven"])
    adapt(
        held,
        tok,
        clips,
        AdaptConfig(steps=40, lr=3e-3, speed_factors=(1.0,), anchor=1.0),
    )
    assert moved(held) < 0.5 * moved(model)


def test_cli_writes_a_loadable_checkpoint_that_records_the_adaptation(tmp_path):
    model, tok = tiny_model(["three seven"])
    source = tmp_path / "m.pt"
    save_model(source, model, tok, {"dev_wer": 0.5}, half=True)
    manifest = tmp_path / "me.jsonl"
    write_manifest(manifest, digit_clips())
    out = tmp_path / "me.pt"
    args = ["adapt", str(manifest), "--model", str(source), "--output", str(out)]
    assert main([*args, "--steps", "3"]) == 0
    adapted, tok2, meta = load_model(out)
    assert tok2.symbols == tok.symbols and stored_half(out)
    assert meta["dev_wer"] == 0.5
    (entry,) = meta["adaptation"]
    assert entry["from"] == "m.pt" and entry["utterances"] == 2 and entry["steps"] == 3
    # adapting the adapted model again keeps the history
    assert (
        main([*args[:3], str(out), "--output", str(tmp_path / "2.pt"), "--steps", "2"])
        == 0
    )
    assert len(load_model(tmp_path / "2.pt")[2]["adaptation"]) == 2


def test_cli_refuses_an_exported_model(tmp_path, capsys):
    from asr.model.export import export_model

    model, tok = tiny_model(["three seven"])
    export_model(model, tok, tmp_path / "m.ts", "torchscript")
    write_manifest(tmp_path / "me.jsonl", digit_clips())
    args = ["adapt", str(tmp_path / "me.jsonl"), "--model", str(tmp_path / "m.ts")]
    assert main([*args, "--output", str(tmp_path / "o.pt")]) == 2
    assert "exported model" in capsys.readouterr().err


def test_cli_refuses_words_the_model_cannot_spell(tmp_path, capsys):
    model, tok = tiny_model(["three"])  # no 'v' or 'n'
    save_model(tmp_path / "m.pt", model, tok)
    write_manifest(tmp_path / "me.jsonl", digit_clips())
    args = ["adapt", str(tmp_path / "me.jsonl"), "--model", str(tmp_path / "m.pt")]
    assert main([*args, "--output", str(tmp_path / "o.pt")]) == 2
    assert "cannot spell" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


def test_the_bundled_model_learns_an_unheard_speaker_and_keeps_an4():
    # FSDD's nicolas was held out of the bundled model's training; 3 of his clips
    # per digit teach it his voice, scored on 5 others per digit; the AN4 clips
    # it knew stay (nearly all) right
    if not SHARED_FSDD.is_dir():
        pytest.skip("../shared/data/fsdd is not here")
    from asr.audio.files import load_audio
    from asr.decode.decoder import DecodingOptions
    from asr.decode.metrics import score
    from asr.model.bundled import default_model_path
    from asr.stream.grammar import DIGIT_WORDS
    from asr.transcribe import Transcriber

    enrol, test = [], []
    for digit, word in enumerate(DIGIT_WORDS):
        for i in range(8):
            path = str(SHARED_FSDD / f"{digit}_nicolas_{i * 6}.wav")
            (enrol if i < 3 else test).append(Utterance(path, 0.4, word, "nicolas"))
    model, tok, _ = load_model(default_model_path())

    def wer(utts) -> float:
        options = DecodingOptions.for_model(model.decoding_defaults)  # 200 ms pad
        wavs = [load_audio(u.audio_filepath) for u in utts]
        hyps = Transcriber(model, tok, options).transcribe_waveforms(wavs)
        return score([u.text for u in utts], [h.text for h in hyps]).wer

    an4 = [Utterance(str(p), 1.0, text, "an4") for p, text in clip_rows()]
    before, an4_before = wer(test), wer(an4)
    adapt(model, tok, enrol)
    after, an4_after = wer(test), wer(an4)
    print(f"nicolas {before:.3f} -> {after:.3f}, AN4 clips {an4_before} -> {an4_after}")
    assert after < before / 2, (before, after)
    assert an4_after <= an4_before + 0.1, (an4_before, an4_after)


def speech_with_pauses(clips: list, seed: int = 0) -> np.ndarray:
    """The clips (16 kHz) one after another, 0.8 s of faint noise around each."""
    rng = np.random.default_rng(seed)

    def pause() -> np.ndarray:
        return (3e-4 * rng.standard_normal(12800)).astype(np.float32)

    return np.concatenate([pause()] + [x for c in clips for x in (c, pause())])


def test_enrol_saves_each_prompted_word_and_adapt_reads_the_manifest(tmp_path):
    import soundfile as sf

    from asr.audio.files import load_audio

    three, seven = (load_audio(u.audio_filepath) for u in digit_clips())
    sf.write(tmp_path / "said.wav", speech_with_pauses([three, seven] * 2), 16000)
    out = tmp_path / "me"
    args = ["enrol", "--words", "three", "seven", "--repeats", "2", "--out", str(out)]
    assert main([*args, "--input", str(tmp_path / "said.wav"), "--speed", "0"]) == 0
    utts = read_manifest(out / "enrol.jsonl")
    assert [u.text for u in utts] == ["three", "seven", "three", "seven"]
    assert {u.speaker for u in utts} == {"me"}
    for u, clip in zip(utts, [three, seven] * 2):
        saved = load_audio(u.audio_filepath)
        # the whole word, with at most the endpointer's pre- and post-roll around it
        assert len(clip) <= len(saved) <= len(clip) + 0.8 * 16000
        assert np.abs(saved).max() == pytest.approx(np.abs(clip).max(), rel=0.01)
    model, tok = tiny_model(["three seven"])
    save_model(tmp_path / "m.pt", model, tok)
    adapt_args = ["adapt", str(out / "enrol.jsonl"), "--model", str(tmp_path / "m.pt")]
    assert main([*adapt_args, "--output", str(out / "a.pt"), "--steps", "2"]) == 0
    assert load_model(out / "a.pt")[2]["adaptation"][0]["speakers"] == ["me"]


def test_enrol_says_so_when_the_speech_runs_out(tmp_path, capsys):
    import soundfile as sf

    from asr.audio.files import load_audio

    three = load_audio(digit_clips()[0].audio_filepath)
    sf.write(tmp_path / "said.wav", speech_with_pauses([three]), 16000)
    args = ["enrol", "--words", "three", "--repeats", "2", "--out", str(tmp_path)]
    assert main([*args, "--input", str(tmp_path / "said.wav"), "--speed", "0"]) == 1
    assert "1 of 2 clips" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "enrol.jsonl")) == 1


def test_bench_enrolment_draws_k_clips_of_each_word_apart_from_the_test_clips():
    from scripts.bench_adapt import enrolment

    utts = [
        Utterance(f"{w}{i}.wav", 0.5, w, "s") for w in ("up", "down") for i in range(6)
    ]
    enrol, test = enrolment(utts, 2, seed=0)
    assert sorted(u.text for u in enrol) == ["down", "down", "up", "up"]
    assert len(test) == 8 and not {u.audio_filepath for u in enrol} & {
        u.audio_filepath for u in test
    }
    assert enrolment(utts, 2, seed=0) == (enrol, test)
    assert enrolment(utts, 2, seed=1)[0] != enrol  # another draw, other clips
