"""Transcribing with an ONNX export never imports torch: `asr transcribe` and
`asr evaluate` use the bundled model's export by default, and give the
checkpoint's transcripts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asr.audio.files import load_audio
from asr.model import bundled
from asr.model.checkpoint import load_model
from asr.model.export import max_difference
from asr.model.exported import load_inference_model
from tests.conftest import ROOT, clip_rows

pytest.importorskip("onnxruntime")

PROBE = """
import json, sys
from asr.cli.app import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "torchaudio", "librosa") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_cli(args: list[str]) -> tuple[list[str], dict]:
    """`asr ARGS` in a fresh interpreter -> (its output lines, probe result)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    return lines[:-1], json.loads(lines[-1])


def test_the_bundled_export_is_shipped_and_preferred(monkeypatch):
    export = bundled.default_export_path()
    assert export.is_file()
    assert bundled.default_inference_path(True) == export
    assert bundled.default_inference_path(False) == bundled.default_model_path()
    monkeypatch.setattr(bundled.importlib.util, "find_spec", lambda name: None)
    assert bundled.default_inference_path(True) == bundled.default_model_path()


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
