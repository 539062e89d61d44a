"""Word times from CTC alignment against boundaries found from the signal alone
(asr.metrics.speech_islands: silence 30 dB under the loudest frame, islands
closer than 150 ms merged, shorter than 150 ms dropped)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from asr.alignment import word_boundary_errors
from asr.checkpoint import default_model_path, load_model
from asr.data import read_manifest
from asr.metrics import speech_islands
from tests.conftest import ROOT, SHARED_AN4, clip_rows


def test_speech_islands_on_a_synthetic_signal():
    rng = np.random.default_rng(0)
    wav = np.concatenate(
        [
            np.zeros(8000),
            0.3 * rng.standard_normal(4800),
            np.zeros(4000),
            0.2 * rng.standard_normal(6400),
            np.zeros(800),
            0.2 * rng.standard_normal(800),  # merges
            np.zeros(4000),
            0.3 * rng.standard_normal(800),
        ]
    )  # click
    assert speech_islands(wav.astype(np.float32)) == [(0.5, 0.8), (1.05, 1.55)]


@pytest.fixture(scope="module")
def model():
    return load_model(default_model_path())[:2]


def test_word_boundaries_on_bundled_clips(model):
    starts, ends = word_boundary_errors(*model, clip_rows())
    errors = np.abs(np.concatenate([starts, ends]))
    assert len(errors) >= 2
    assert np.median(errors) <= 0.1, errors


def test_word_boundaries_on_an4_dev(model, tmp_path):
    if not SHARED_AN4.is_dir():
        pytest.skip("../shared/data/an4 is not here")
    sys.path.insert(0, str(ROOT / "recipes" / "an4"))
    import prepare

    prepare.main(["--an4", str(SHARED_AN4), "--out", str(tmp_path)])
    dev = read_manifest(tmp_path / "dev.jsonl")
    starts, ends = word_boundary_errors(
        *model, [(u.audio_filepath, u.text) for u in dev]
    )
    errors = np.abs(np.concatenate([starts, ends]))
    assert len(starts) >= 10
    assert np.median(errors) <= 0.1
    assert np.mean(errors <= 0.1) >= 0.6
