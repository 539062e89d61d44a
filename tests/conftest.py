from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asr.data.manifest import Utterance, write_manifest
from asr.model.bundled import default_model_path

ROOT = Path(__file__).resolve().parent.parent
CLIPS = default_model_path().parent / "clips"
TEST_DATA = Path(__file__).parent / "data"
SHARED_AN4 = ROOT.parent / "shared" / "data" / "an4"

torch.set_num_threads(2)


def clip_rows() -> list[tuple[Path, str]]:
    """The bundled real AN4 clips with their reference transcripts."""
    rows = (CLIPS / "references.tsv").read_text().splitlines()
    return [(CLIPS / name, text) for name, text in (r.split("\t") for r in rows)]


def english_rows() -> list[tuple[Path, str]]:
    """Real general English of speakers held out of training (LibriSpeech and
    speechocean762, tests/data/LICENSE.md) with their transcripts."""
    rows = (TEST_DATA / "english.tsv").read_text().splitlines()
    return [(TEST_DATA / name, text) for name, text in (r.split("\t") for r in rows)]


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory):
    """asr's cache (the general-English LM, spelt lexicons) in a folder of this
    test session, never the user's (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("asr-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASR_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def english_lm_cache(session_cache) -> tuple[Path, Path]:
    """(cache folder, LM file): the general-English LM, built once per test
    session in the session's cache (ASR_CACHE_DIR is that folder)."""
    from asr.decode import english_lm

    return session_cache, Path(english_lm.resolve_lm("english"))


PROBE = """
import json, sys
from asr.cli.app import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "torchaudio", "librosa") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def run_cli(args: list[str]) -> tuple[list[str], dict]:
    """`asr ARGS` in a fresh interpreter -> (its output lines, probe result:
    exit code and which heavy modules it imported)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    return lines[:-1], json.loads(lines[-1])


@pytest.fixture
def an4_manifest(tmp_path: Path) -> Path:
    """A manifest of the bundled AN4 clips (relative paths, as users write them)."""
    import soundfile as sf

    utts = []
    for path, text in clip_rows():
        info = sf.info(str(path))
        utts.append(Utterance(str(path), info.frames / info.samplerate, text, "an4"))
    out = tmp_path / "clips.jsonl"
    write_manifest(out, utts)
    return out


def load_recipe_prepare(recipe: str, script: str = "prepare"):
    """recipes/<recipe>/<script>.py as a module of its own name: every recipe has a
    prepare.py, and a plain ``import prepare`` would give whichever came first."""
    import importlib.util

    path = ROOT / "recipes" / recipe / f"{script}.py"
    spec = importlib.util.spec_from_file_location(f"recipe_{recipe}_{script}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_recipe(args: list[str], env: dict | None = None) -> str:
    """Run a recipe script from the repository root (PY and ASR: this interpreter
    unless ``env`` says otherwise); its stdout. A failing script fails the test."""
    import os
    import subprocess
    import sys

    here = {"PY": sys.executable, "ASR": f"{sys.executable} -m asr.cli"}
    env = {**os.environ, **here, **(env or {})}
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def band_energy(wav: torch.Tensor, low_hz: float, high_hz: float) -> float:
    """Energy of a 16 kHz waveform's spectrum in [low_hz, high_hz)."""
    import numpy as np

    spectrum = np.abs(np.fft.rfft(wav.numpy().astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(wav), 1 / 16000)
    return float(spectrum[(freqs >= low_hz) & (freqs < high_hz)].sum())
