from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from asr.audio import load_audio
from asr.augment import AdditiveNoise, BandLimit
from tests.conftest import band_energy


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean()).item()


@pytest.fixture
def speech(an4_manifest) -> torch.Tensor:
    from asr.data import read_manifest

    return torch.from_numpy(load_audio(read_manifest(an4_manifest)[0].audio_filepath))


def test_noise_lands_at_the_drawn_snr(speech):
    noise = AdditiveNoise(1.0, [0.0, 30.0])
    snrs = [snr_db(speech, noise(speech, random.Random(i))) for i in range(40)]
    assert all(0.0 - 1e-3 <= s <= 30.0 + 1e-3 for s in snrs)
    assert np.std(snrs) > 5  # spread over the range, not one value


def test_noise_from_recordings_is_a_looped_stretch_of_one(speech):
    tone = np.sin(2 * np.pi * 400 * np.arange(1000) / 16000).astype(np.float32)
    noise = AdditiveNoise(1.0, [10.0, 10.0], sources=[tone])
    noisy = noise(speech, random.Random(0))
    added = (noisy - speech).numpy()
    assert snr_db(speech, noisy) == pytest.approx(10.0, abs=0.01)
    # the added signal is the tone, scaled (whole periods loop seamlessly): it
    # peaks at 400 Hz
    spectrum = np.abs(np.fft.rfft(added))
    assert np.argmax(spectrum) * 16000 / len(added) == pytest.approx(400, abs=2)


def test_noise_probability_and_silence(speech):
    never = AdditiveNoise(0.0, [10.0, 20.0])
    assert never(speech, random.Random(0)) is speech
    half = AdditiveNoise(0.5, [10.0, 20.0])
    changed = sum(half(speech, random.Random(i)) is not speech for i in range(200))
    assert 70 < changed < 130
    silence = torch.zeros(1600)
    assert torch.equal(
        AdditiveNoise(1.0, [10.0, 20.0])(silence, random.Random(0)), silence
    )


@pytest.mark.parametrize("prob,snr", [(1.5, [10, 20]), (0.5, [20, 10]), (0.5, [10])])
def test_bad_noise_settings_are_refused(prob, snr):
    with pytest.raises(ValueError):
        AdditiveNoise(prob, snr)


def test_noise_from_config_reads_the_noise_manifest(tmp_path):
    import soundfile as sf

    from asr.augment import AugmentConfig
    from asr.data import Utterance, write_manifest

    assert AdditiveNoise.from_config(AugmentConfig(noise_prob=0.0)) is None
    hum = np.sin(2 * np.pi * 100 * np.arange(8000) / 16000).astype(np.float32)
    sf.write(tmp_path / "hum.wav", 0.1 * hum, 16000)
    write_manifest(tmp_path / "noise.jsonl", [Utterance("hum.wav", 0.5, "", None)])
    cfg = AugmentConfig(noise_prob=0.5, noise_manifest=str(tmp_path / "noise.jsonl"))
    noise = AdditiveNoise.from_config(cfg)
    assert noise.prob == 0.5 and noise.snr_db == (10.0, 40.0)
    (source,) = noise.sources
    np.testing.assert_allclose(source, 0.1 * hum, atol=1e-4)


def test_band_limit_leaves_only_what_an_8khz_recording_holds(speech):
    limited = BandLimit(1.0, [8000])(speech, random.Random(0))
    assert limited.shape == speech.shape and limited.dtype == speech.dtype
    # above 4 kHz (the 8 kHz Nyquist frequency) the speech is gone ...
    assert band_energy(limited, 4200, 8000) < 1e-4 * band_energy(speech, 4200, 8000)
    # ... below it, it is untouched
    kept = band_energy(limited, 100, 3500) / band_energy(speech, 100, 3500)
    assert kept == pytest.approx(1.0, abs=0.02)


def test_band_limit_is_what_the_loader_makes_of_a_file_at_that_rate(speech, tmp_path):
    import soundfile as sf

    from asr.audio import resample

    sf.write(
        tmp_path / "phone.wav",
        resample(speech.numpy(), 16000, 8000),
        8000,
        subtype="FLOAT",
    )
    loaded = torch.from_numpy(load_audio(tmp_path / "phone.wav"))
    limited = BandLimit(1.0, [8000])(speech, random.Random(0))
    n = min(len(loaded), len(limited))
    torch.testing.assert_close(limited[:n], loaded[:n], atol=1e-5, rtol=0)


def test_band_limit_draws_its_rate_and_probability(speech):
    never = BandLimit(0.0)
    assert never(speech, random.Random(0)) is speech
    half = BandLimit(0.5, [8000])
    changed = sum(half(speech, random.Random(i)) is not speech for i in range(200))
    assert 70 < changed < 130
    both = BandLimit(1.0, [8000, 11025])
    tops = set()
    for i in range(20):  # the highest surviving frequency tells the rate drawn
        out = both(speech, random.Random(i))
        tops.add(band_energy(out, 4200, 5000) > 1e-3 * band_energy(speech, 4200, 5000))
    assert tops == {True, False}
    assert torch.equal(both(speech, random.Random(3)), both(speech, random.Random(3)))


@pytest.mark.parametrize(
    "prob,rates", [(1.5, [8000]), (0.5, [16000]), (0.5, [500]), (0.5, [])]
)
def test_bad_band_limit_settings_are_refused(prob, rates):
    with pytest.raises(ValueError):
        BandLimit(prob, rates)


def test_band_limit_from_config():
    from asr.augment import AugmentConfig

    assert BandLimit.from_config(AugmentConfig()) is None
    made = BandLimit.from_config(
        AugmentConfig(band_limit_prob=0.25, band_limit_rates=[8000, 11025])
    )
    assert (made.prob, made.rates) == (0.25, [8000, 11025])
