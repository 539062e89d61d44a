"""The bundled general-English model, `--model english`: real speech of LibriSpeech
and speechocean762 speakers that no training set here holds (tests/data), through
its ONNX export without torch, and through its checkpoint where streaming needs it."""

from __future__ import annotations

import json

import pytest

from asr.cli.app import main
from asr.decode.metrics import score
from asr.model import bundled
from tests.conftest import english_rows, run_cli


def wer(lines: list[str]) -> float:
    """WER of `asr transcribe` output lines (path<TAB>text) on english_rows."""
    refs = {str(path): text for path, text in english_rows()}
    hyps = dict(line.split("\t", 1) if "\t" in line else (line, "") for line in lines)
    assert set(hyps) == set(refs)
    return score(list(refs.values()), [hyps[path] for path in refs]).wer


def test_english_transcribes_held_out_speakers_without_torch(
    english_lm_cache, monkeypatch
):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("ASR_CACHE_DIR", str(english_lm_cache[0]))
    clips = [str(path) for path, _ in english_rows()]
    lines, probe = run_cli(["transcribe", *clips, "--model", "english"])
    assert probe == {"code": 0, "heavy": []}  # its int8 export, torch-free
    # measured: 2 errors in 26 words; the default (AN4) model gets nearly all wrong
    assert wer(lines) <= 0.2
    lines, probe = run_cli(["transcribe", *clips])
    assert probe["code"] == 0 and wer(lines) >= 0.8


def test_english_streams_from_its_checkpoint(english_lm_cache, monkeypatch, capsys):
    monkeypatch.setenv("ASR_CACHE_DIR", str(english_lm_cache[0]))
    path, text = english_rows()[1]  # "in any case he had not the time"
    argv = ["stream", "--model", "english", "--input", str(path), "--speed", "0"]
    assert main(argv) == 0
    final = capsys.readouterr().out.strip().splitlines()[-1]
    assert score([text], [final.split("] ", 1)[1]]).wer <= 0.25  # measured: 1 of 8


def test_names_resolve_to_the_bundled_files_and_typos_say_which_exist(capsys):
    assert bundled.resolve_model("english").name == "english_bilstm.pt"
    assert main(["transcribe", str(english_rows()[0][0]), "--model", "englsh"]) == 2
    err = capsys.readouterr().err
    assert "englsh: no such model file (bundled models: commands, english)" in err


def test_own_words_fire_on_a_held_out_speaker_and_not_on_other_speech(
    english_lm_cache, monkeypatch, capsys
):
    """examples/own_words.yaml with the english model: "no one" as a non-native
    speaker said it in a sentence (cut at its aligned times by
    recipes/english/own_words.py) fires; another whole sentence fires nothing."""
    monkeypatch.setenv("ASR_CACHE_DIR", str(english_lm_cache[0]))
    grammar = ["--model", "english", "--grammar", "examples/own_words.yaml"]
    for clip, fired in [("013620108_no_one.flac", "no one"), ("075510057.opus", None)]:
        argv = ["commands", *grammar, "--input", f"tests/data/{clip}", "--speed", "0"]
        assert main([*argv, "--json"]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        commands = [e["command"] for e in events if "command" in e]
        assert commands == ([fired] if fired else []), clip
