"""Long files: streaming reads, cuts at pauses, global timestamps."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from asr.audio.files import SAMPLE_RATE, load_audio, stream_audio
from asr.decode.decoder import DecodingOptions
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.transcribe import Transcriber, split_at_pauses
from tests.conftest import clip_rows

GAP = 0.8  # seconds of silence between clips


def bursts(n: int, seconds: float = 1.3, gap: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(0)
    parts = []
    for _ in range(n):
        parts += [
            0.3 * rng.standard_normal(int(seconds * SAMPLE_RATE)),
            np.zeros(int(gap * SAMPLE_RATE)),
        ]
    return np.concatenate(parts).astype(np.float32)


def test_split_at_pauses_cuts_in_silence_and_loses_nothing():
    wav = bursts(12)
    blocks = [wav[k : k + 7000] for k in range(0, len(wav), 7000)]
    pieces = list(split_at_pauses(blocks, max_seconds=4.0))
    assert len(pieces) > 1
    np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), wav)
    for start, piece in pieces:
        assert len(piece) <= 4.0 * SAMPLE_RATE
        assert start == pytest.approx(
            sum(len(p) for s, p in pieces if s < start) / SAMPLE_RATE
        )
    for start, _ in pieces[1:]:  # every cut lies in a silent gap
        cut = int(start * SAMPLE_RATE)
        assert np.abs(wav[cut - 800 : cut + 800]).max() == 0


@pytest.mark.parametrize("rate", [16000, 44100])
def test_stream_audio_matches_load_audio(tmp_path, rate):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(rate * 7)).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(str(path), x, rate, subtype="FLOAT")
    streamed = np.concatenate(list(stream_audio(path, block_seconds=2.0)))
    whole = load_audio(path)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    if rate == SAMPLE_RATE:
        np.testing.assert_array_equal(streamed, whole)
    else:  # same signal, both resampled with soxr (HQ vs VHQ): close, not equal
        assert np.corrcoef(streamed[:n], whole[:n])[0, 1] > 0.99


@pytest.fixture(scope="module")
def transcriber():
    model, tok, _ = load_model(default_model_path())
    return Transcriber(
        model, tok, DecodingOptions(word_timestamps=True), max_segment_seconds=5.0
    )


def test_long_file_is_cut_and_stitched_with_global_times(tmp_path, transcriber):
    rows = clip_rows()
    # a quiet room between the clips (digital zeros never occur in recordings)
    gap = (
        3e-4 * np.random.default_rng(2).standard_normal(int(GAP * SAMPLE_RATE))
    ).astype(np.float32)
    clips = [load_audio(p) for p, _ in rows]
    starts, parts, t = [], [], 0.0
    for c in clips:
        starts.append(t)
        parts += [c, gap]
        t += (len(c) + len(gap)) / SAMPLE_RATE
    path = tmp_path / "long.flac"
    sf.write(str(path), np.concatenate(parts), SAMPLE_RATE)
    (res,) = transcriber.transcribe_files([path])
    assert res.error is None and res.duration == pytest.approx(t, abs=0.01)
    assert len(res.segments) >= 3  # 16 s in pieces of <= 5 s
    assert all(s.end - s.start <= 5.0 + 1e-6 for s in res.segments)
    # the same words as transcribing the clips one by one
    singles = " ".join(h.text for h in transcriber.transcribe_waveforms(clips))
    assert score([singles], [res.text]).cer <= 0.15
    # each clip's words carry times inside that clip's span of the long file
    bounds = [*starts, t]
    for w in res.words:
        k = max(i for i, s in enumerate(starts) if s <= w.start)
        assert w.end <= bounds[k + 1] + 0.05, w
    assert res.words == sorted(res.words, key=lambda w: w.start)


def test_pauses_split_real_speech_before_the_length_limit():
    rows = clip_rows()
    quiet = (
        3e-4 * np.random.default_rng(3).standard_normal(int(0.8 * SAMPLE_RATE))
    ).astype(np.float32)
    a, b = load_audio(rows[1][0]), load_audio(rows[3][0])
    wav = np.concatenate([a, quiet, b])
    pieces = list(
        split_at_pauses(
            [wav[k : k + 4000] for k in range(0, len(wav), 4000)], max_seconds=30.0
        )
    )
    assert len(pieces) == 2
    cut = pieces[1][0]
    assert len(a) / SAMPLE_RATE < cut < (len(a) + len(quiet)) / SAMPLE_RATE


@pytest.mark.slow
def test_a_one_hour_file(tmp_path, transcriber):
    """One hour: digital silence with the "stop" clip every 10 minutes."""
    stop = load_audio(next(p for p, t in clip_rows() if t == "stop"))
    path = tmp_path / "hour.flac"
    minute = np.zeros(60 * SAMPLE_RATE, dtype=np.float32)
    with sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, format="FLAC") as f:
        for m in range(60):
            if m % 10 == 5:
                f.write(np.concatenate([stop, minute[len(stop) :]]))
            else:
                f.write(minute)
    (res,) = transcriber.transcribe_files([path])
    assert res.error is None and res.duration == pytest.approx(3600, abs=0.01)
    stops = [w for w in res.words if w.word == "stop"]
    assert len(stops) == 6
    for k, w in enumerate(stops):  # global times: minute 5, 15, ..., 55
        assert 300 + 600 * k <= w.start < w.end <= 300 + 600 * k + 1.0
