"""scripts/synthesize.py: plans are reproducible, post-processing does what it
says, and each installed TTS engine yields 16 kHz speech the manifest describes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from scripts.synthesize import (
    Item,
    available_engines,
    coloured_noise,
    main,
    plan,
    render,
    trim,
)

ENGINES = available_engines()


def test_plans_are_reproducible_and_cover_every_text_and_engine():
    texts = ["yes", "no", "seven three"]
    a = plan(texts, copies=4, engines=["espeak", "flite"], seed=3)
    assert a == plan(texts, copies=4, engines=["espeak", "flite"], seed=3)
    assert a != plan(texts, copies=4, engines=["espeak", "flite"], seed=4)
    assert [it.text for it in a] == [t for t in texts for _ in range(4)]
    assert {it.engine for it in a} == {"espeak", "flite"}
    assert all(0.8 <= it.rate <= 1.25 and -3 <= it.pitch <= 3 for it in a)
    weighted = plan(texts, copies=6, engines=["espeak", "espeak", "flite"])
    assert [it.engine for it in weighted].count("espeak") == 12  # 2:1


@pytest.mark.parametrize(
    "colour, slope", [("white", 0.0), ("pink", -1.0), ("brown", -2.0)]
)
def test_noise_colours_have_their_spectral_slopes(colour, slope):
    noise = coloured_noise(2**16, colour, np.random.default_rng(0))
    assert abs(noise.std() - 1) < 1e-6
    power = np.abs(np.fft.rfft(noise)) ** 2
    f = np.arange(len(power))
    band = (f > 100) & (f < 20000)
    fitted = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert abs(fitted - slope) < 0.15


def test_trim_cuts_silence_but_not_speech():
    rate = 16000
    tone = 0.3 * np.sin(np.arange(rate) * 0.1)
    wav = np.concatenate([np.zeros(8000), tone, np.zeros(4000)])
    out = trim(wav, rate)
    assert abs(len(out) - rate) <= 160


@pytest.mark.skipif("espeak" not in ENGINES, reason="espeak-ng is not installed")
def test_noise_is_added_at_the_requested_snr():
    item = Item(
        0, "seven", "espeak", "en-us+m3", 1.0, 0.0, -25.0, "none", 0.0, (0.1, 0.1)
    )
    clean = render(item)
    noisy = render(replace(item, noise="white", snr_db=10.0))
    noise = noisy - clean
    speech = trim(clean, 16000)
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(noise**2))
    assert abs(snr - 10.0) < 0.5
    level = 10 * np.log10(np.mean(speech**2))
    assert abs(level - -25.0) < 1.0


@pytest.mark.parametrize("engine", ["espeak", "flite", "festival", "piper"])
def test_each_engine_speaks(engine, tmp_path):
    if engine not in ENGINES:
        pytest.skip(f"{engine} is not installed")
    texts = tmp_path / "t.txt"
    texts.write_text("Seven, three!\nrubout\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "--texts",
                str(texts),
                "--out",
                str(out),
                "--copies",
                "1",
                "--engines",
                engine,
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    rows = [
        json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()
    ]
    assert [r["text"] for r in rows] == ["seven three", "rubout"]
    for r in rows:
        assert r["speaker"].startswith(engine + ":")
        info = sf.info(out / r["audio_filepath"])
        assert info.samplerate == 16000 and info.channels == 1
        assert abs(info.frames / 16000 - r["duration"]) < 1e-3
        assert 0.3 < r["duration"] < 4.0
        wav, _ = sf.read(out / r["audio_filepath"])
        assert np.abs(wav).max() > 0.01


def test_unknown_engine_is_an_error(tmp_path, capsys):
    texts = tmp_path / "t.txt"
    texts.write_text("yes\n")
    with pytest.raises(SystemExit):
        main(["--texts", str(texts), "--out", str(tmp_path), "--engines", "sam"])
    assert "unknown engine" in capsys.readouterr().err


@pytest.mark.skipif("flite" not in ENGINES, reason="flite is not installed")
def test_voices_can_be_held_out_and_used_alone(tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("yes\n")
    common = ["--texts", str(texts), "--copies", "6", "--engines", "flite"]
    main([*common, "--out", str(tmp_path / "a"), "--exclude-voices", "flite:rms"])
    main([*common, "--out", str(tmp_path / "b"), "--only-voices", "flite:rms"])

    def speakers(d):
        lines = (tmp_path / d / "manifest.jsonl").read_text().splitlines()
        return {json.loads(line)["speaker"] for line in lines}

    assert "flite:rms" not in speakers("a") and len(speakers("a")) > 1
    assert speakers("b") == {"flite:rms"}


def test_nonspeech_clips_have_empty_texts_and_their_levels(tmp_path):
    assert main(["--nonspeech", "12", "--out", str(tmp_path), "--seed", "1"]) == 0
    rows = [
        json.loads(x)
        for x in (tmp_path / "manifest.jsonl").read_text().split("\n")
        if x
    ]
    assert len(rows) == 12 and {r["text"] for r in rows} == {""}
    kinds = [r["speaker"].split(":")[1] for r in rows]
    assert kinds[:6] == ["white", "pink", "brown", "tone", "hum", "silence"]
    for r in rows:
        wav, rate = sf.read(tmp_path / r["audio_filepath"])
        assert rate == 16000 and 0.5 <= len(wav) / rate <= 3.0
        level = 10 * np.log10(np.mean(wav**2) + 1e-20)
        assert -75 < level < -9  # -50..-10 dBFS, near silence at -70


def test_speech_needs_texts(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path)])
