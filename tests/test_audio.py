from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from asr.audio.files import SAMPLE_RATE, AudioError, decode_audio_bytes, load_audio
from tests.conftest import CLIPS, TEST_DATA


def tone(rate: int, seconds: float = 1.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(wav: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(wav))
    return float(np.fft.rfftfreq(len(wav), 1 / rate)[spec.argmax()])


@pytest.mark.parametrize(
    "ext,fmt,subtype",
    [
        ("wav", "WAV", "PCM_16"),
        ("wav", "WAV", "PCM_32"),
        ("wav", "WAV", "FLOAT"),
        ("flac", "FLAC", "PCM_16"),
        ("ogg", "OGG", "VORBIS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
        ("aiff", "AIFF", "PCM_16"),
    ],
)
def test_formats_decode_to_16k_mono_float(tmp_path, ext, fmt, subtype):
    path = tmp_path / f"tone.{ext}"
    sf.write(str(path), tone(SAMPLE_RATE), SAMPLE_RATE, format=fmt, subtype=subtype)
    wav = load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    # lossy codecs add encoder delay/padding; the length stays within 0.1 s
    assert abs(len(wav) - SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert abs(dominant_freq(wav, SAMPLE_RATE) - 440) < 3
    assert 0.3 < np.abs(wav).max() <= 1.0


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_any_rate_is_resampled_to_16k(tmp_path, rate):
    path = tmp_path / "tone.wav"
    sf.write(str(path), tone(rate, freq=1000.0), rate)
    wav = load_audio(path)
    assert abs(len(wav) - SAMPLE_RATE) <= 2
    assert abs(dominant_freq(wav, SAMPLE_RATE) - 1000) < 3


@pytest.mark.parametrize("channels", [2, 6])
def test_channels_are_averaged(tmp_path, channels):
    x = tone(SAMPLE_RATE)
    data = np.stack([x * (c % 2) for c in range(channels)], axis=1)  # odd ones play
    path = tmp_path / "multi.wav"
    sf.write(str(path), data, SAMPLE_RATE, subtype="FLOAT")
    wav = load_audio(path)
    expected = x * (channels // 2) / channels
    np.testing.assert_allclose(wav, expected, atol=1e-6)


def test_nist_sphere_and_8k_wav_real_clips():
    sph = load_audio(next(CLIPS.glob("*.sph")))
    assert sph.dtype == np.float32 and 0.5 * SAMPLE_RATE < len(sph) < 10 * SAMPLE_RATE
    digit = TEST_DATA / "3_jackson_0.wav"
    info = sf.info(str(digit))
    assert info.samplerate == 8000
    assert abs(len(load_audio(digit)) - 2 * info.frames) <= 2


def test_nan_and_inf_samples_are_replaced(tmp_path):
    x = tone(SAMPLE_RATE)
    x[100], x[200], x[300] = np.nan, np.inf, -np.inf
    path = tmp_path / "bad.wav"
    sf.write(str(path), x, SAMPLE_RATE, subtype="FLOAT")
    assert np.isfinite(load_audio(path)).all()


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: no such audio file"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file_names_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: the file is empty"):
        load_audio(path)


def test_non_audio_file_names_the_file(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio at all\n" * 20)
    with pytest.raises(AudioError, match="notes.wav: not a readable audio file"):
        load_audio(path)


def test_zero_sample_wav_names_the_file(tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(str(path), np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="silent.wav: the file contains no audio"):
        load_audio(path)


def test_decode_bytes_matches_file(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(str(path), tone(22050), 22050)
    np.testing.assert_array_equal(
        decode_audio_bytes(path.read_bytes()), load_audio(path)
    )
