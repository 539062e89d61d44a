"""Transcribing with an ONNX export never imports torch: `asr transcribe` and
`asr evaluate` use the bundled model's export by default, and give the
checkpoint's transcripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.audio.files import load_audio
from asr.model import bundled
from asr.model.checkpoint import load_model
from asr.model.export import max_difference
from asr.model.exported import load_inference_model
from tests.conftest import clip_rows, run_cli

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", sorted(bundled.BUNDLED_MODELS))
def test_each_bundled_export_is_shipped_and_preferred(monkeypatch, name):
    export = bundled.bundled_export_path(name)
    checkpoint = bundled.bundled_model_path(name)
    assert export.is_file() and checkpoint.is_file()
    for size in (export.stat().st_size, checkpoint.stat().st_size):
        assert size <= 20 * 2**20
    assert bundled.resolve_model(name, prefer_export=True) == export
    assert bundled.resolve_model(name, prefer_export=False) == checkpoint
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    assert bundled.resolve_model(name, prefer_export=True) == checkpoint


def test_no_model_is_the_default_one_and_files_win_over_names(tmp_path, monkeypatch):
    assert bundled.resolve_model(None, True) == bundled.default_export_path()
    assert bundled.resolve_model(None) == bundled.default_model_path()
    assert bundled.default_model_path() == bundled.bundled_model_path("commands")
    monkeypatch.chdir(tmp_path)
    assert bundled.resolve_model("englsh") == Path("englsh")  # loading says why
    (tmp_path / "english").write_bytes(b"")
    assert bundled.resolve_model("english") == Path("english")


def test_the_export_computes_what_the_checkpoint_does():
    model, _, _ = load_model(bundled.default_model_path())
    exported, _ = load_inference_model(bundled.default_export_path())
    assert exported.decoding_defaults == model.decoding_defaults  # pad_ms travels
    wavs = [load_audio(path) for path, _ in clip_rows()]
    assert max_difference(model.eval(), exported, wavs) < 1e-3


@pytest.mark.parametrize("decoder", [[], ["--decoder", "beam", "--beam-size", "8"]])
def test_transcribe_without_torch(decoder):
    clips = [str(path) for path, _ in clip_rows()]
    lines, probe = run_cli(["transcribe", *clips, *decoder])
    assert probe == {"code": 0, "heavy": []}
    ckpt, probe = run_cli(
        ["transcribe", *clips, *decoder, "--model", str(bundled.default_model_path())]
    )
    assert "torch" in probe["heavy"]  # the checkpoint needs it: the probe sees it
    assert lines == ckpt and len(lines) == len(clips)


def test_evaluate_without_torch(an4_manifest, tmp_path):
    report = tmp_path / "r.tsv"
    lines, probe = run_cli(["evaluate", str(an4_manifest), "--report", str(report)])
    assert probe == {"code": 0, "heavy": []}
    assert any("WER" in line for line in lines) and report.is_file()
