from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from asr.audio.energy import frame_energy_db
from asr.audio.files import load_audio
from asr.features.edges import EdgeCrop, EdgePad, EdgeTrim
from asr.features.wave_augment import AdditiveNoise, BandLimit, RandomEQ
from tests.conftest import band_energy


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean()).item()


@pytest.fixture
def speech(an4_manifest) -> torch.Tensor:
    from asr.data.manifest import read_manifest

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

    from asr.data.dataset import noise_recordings
    from asr.data.manifest import Utterance, write_manifest
    from asr.features.augment import AugmentConfig

    assert AdditiveNoise.from_config(AugmentConfig(noise_prob=0.0)) is None
    assert noise_recordings("") == []
    hum = np.sin(2 * np.pi * 100 * np.arange(8000) / 16000).astype(np.float32)
    sf.write(tmp_path / "hum.wav", 0.1 * hum, 16000)
    write_manifest(tmp_path / "noise.jsonl", [Utterance("hum.wav", 0.5, "", None)])
    cfg = AugmentConfig(noise_prob=0.5, noise_manifest=str(tmp_path / "noise.jsonl"))
    noise = AdditiveNoise.from_config(cfg, noise_recordings(cfg.noise_manifest))
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

    from asr.audio.files import resample

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
    from asr.features.augment import AugmentConfig

    assert BandLimit.from_config(AugmentConfig()) is None
    made = BandLimit.from_config(
        AugmentConfig(band_limit_prob=0.25, band_limit_rates=[8000, 11025])
    )
    assert (made.prob, made.rates) == (0.25, [8000, 11025])


def tone_in_silence(before: float, tone: float, after: float) -> torch.Tensor:
    """Digital silence, a 440 Hz tone, then faint noise 50 dB below the tone."""
    sr = 16000
    t = torch.arange(int(tone * sr)) / sr
    gen = torch.Generator().manual_seed(0)
    return torch.cat(
        [
            torch.zeros(int(before * sr)),
            0.3 * torch.cos(2 * torch.pi * 440 * t),
            0.3 * 10 ** (-50 / 20) * torch.randn(int(after * sr), generator=gen),
        ]
    )


def test_edge_trim_cuts_to_the_speech_plus_a_margin_of_at_most_max_ms():
    wav = tone_in_silence(0.5, 0.3, 0.4)
    assert EdgeTrim.speech_span(wav) == (8000, 12800)
    tight = EdgeTrim(1.0, max_ms=0.0)(wav, random.Random(0))
    torch.testing.assert_close(tight, wav[8000:12800])
    starts, ends = set(), set()
    for i in range(50):
        out = EdgeTrim(1.0, max_ms=50.0)(wav, random.Random(i))
        # the kept stretch is one piece of the input that holds the whole tone
        start = 8000 - int(torch.nonzero(out)[0])
        assert torch.equal(out, wav[start : start + len(out)])
        end = start + len(out)
        assert 7200 <= start <= 8000 and 12800 <= end <= 13600  # 50 ms = 800
        starts.add(start)
        ends.add(end)
    assert len(starts) > 10 and len(ends) > 10  # the margins are drawn


def test_edge_trim_on_real_speech_keeps_the_speech_and_cuts_the_pauses(an4_manifest):
    from asr.data.manifest import read_manifest

    utt = read_manifest(an4_manifest)[3]
    assert utt.text == "october twenty third nineteen sixty seven"
    speech = torch.from_numpy(load_audio(utt.audio_filepath))
    span = EdgeTrim.speech_span(speech)
    # 0.37 s of silence before "october" and 0.19 s after "seven"
    assert span is not None and span[0] > 5000 and span[1] < len(speech) - 2500
    out = EdgeTrim(1.0, max_ms=20.0)(speech, random.Random(1))
    assert len(out) < len(speech) - 3200
    assert out.pow(2).sum() > 0.99 * speech.pow(2).sum()


def test_edge_trim_probability_and_degenerate_input(speech):
    assert EdgeTrim(0.0)(speech, random.Random(0)) is speech
    half = EdgeTrim(0.5)
    changed = sum(half(speech, random.Random(i)) is not speech for i in range(200))
    assert 70 < changed < 130
    for wav in (torch.zeros(16000), torch.zeros(50), torch.ones(0)):
        assert EdgeTrim(1.0)(wav, random.Random(0)) is wav
    assert torch.equal(
        EdgeTrim(1.0)(speech, random.Random(3)), EdgeTrim(1.0)(speech, random.Random(3))
    )


def test_edge_crop_cuts_into_the_speech_by_at_most_max_ms_per_side():
    wav = tone_in_silence(0.5, 0.3, 0.4)  # the tone is samples [8000, 12800)
    starts, ends = set(), set()
    for i in range(50):
        out = EdgeCrop(1.0, max_ms=50.0)(wav, random.Random(i))
        start = next(
            s for s in range(8000, 8801) if torch.equal(out[:50], wav[s : s + 50])
        )
        end = start + len(out)
        assert torch.equal(out, wav[start:end])  # one piece of the tone, inside it
        assert 8000 <= start <= 8800 and 12000 <= end <= 12800  # 50 ms = 800
        starts.add(start)
        ends.add(end)
    assert len(starts) > 10 and len(ends) > 10  # each side drawn
    # a short word keeps at least half of itself, whatever max_ms says
    short = tone_in_silence(0.2, 0.1, 0.2)  # [3200, 4800)
    for i in range(20):
        assert len(EdgeCrop(1.0, max_ms=500.0)(short, random.Random(i))) >= 800
    assert EdgeCrop(0.0)(wav, random.Random(0)) is wav
    assert EdgeCrop(1.0)(torch.zeros(4000), random.Random(0)).shape == (4000,)
    half = sum(EdgeCrop(0.5)(wav, random.Random(i)) is not wav for i in range(200))
    assert 70 < half < 130


@pytest.mark.parametrize("kind", [EdgeTrim, EdgePad, EdgeCrop])
@pytest.mark.parametrize("prob,max_ms", [(1.5, 50.0), (-0.1, 50.0), (0.5, -1.0)])
def test_bad_edge_settings_are_refused(kind, prob, max_ms):
    with pytest.raises(ValueError, match=f"edge-{kind.KIND}"):
        kind(prob, max_ms)


def test_edge_changes_from_config():
    from asr.features.augment import AugmentConfig

    assert EdgeTrim.from_config(AugmentConfig()) is None
    assert EdgePad.from_config(AugmentConfig()) is None
    cfg = AugmentConfig(
        edge_trim_prob=0.4, edge_trim_max_ms=30, edge_pad_prob=0.2, edge_pad_max_ms=80
    )
    trim, pad = EdgeTrim.from_config(cfg), EdgePad.from_config(cfg)
    assert (type(trim), trim.prob, trim.max_ms) == (EdgeTrim, 0.4, 30)
    assert (type(pad), pad.prob, pad.max_ms) == (EdgePad, 0.2, 80)
    assert EdgeCrop.from_config(cfg) is None
    crop = EdgeCrop.from_config(AugmentConfig(edge_crop_prob=0.3, edge_crop_max_ms=40))
    assert (type(crop), crop.prob, crop.max_ms) == (EdgeCrop, 0.3, 40)


def test_edge_pad_adds_faint_noise_of_drawn_length_around_the_clip(speech):
    pad = EdgePad(1.0, max_ms=300.0)
    peak = float(frame_energy_db(speech.numpy()).max())
    befores, afters = set(), set()
    for i in range(30):
        out = pad(speech, random.Random(i))
        # the clip is untouched somewhere inside; find where from the length drawn
        extra = len(out) - len(speech)
        assert 0 <= extra <= 2 * 4800
        matches = [
            b
            for b in range(extra + 1)
            if torch.equal(out[b : b + 50], speech[:50])
            and torch.equal(out[b : b + len(speech)], speech)
        ]
        assert len(matches) == 1
        before = matches[0]
        befores.add(before)
        afters.add(extra - before)
        noise = torch.cat([out[:before], out[before + len(speech) :]])
        if len(noise) >= 1600:
            level = 10 * torch.log10(noise.double().pow(2).mean()).item()
            assert peak - 61 < level < peak - 39
    assert len(befores) > 10 and len(afters) > 10
    assert max(befores) > 2400 and max(afters) > 2400  # up to 300 ms each


def test_edge_pad_probability_and_degenerate_input(speech):
    assert EdgePad(0.0)(speech, random.Random(0)) is speech
    half = EdgePad(0.5)
    changed = sum(half(speech, random.Random(i)) is not speech for i in range(200))
    assert 70 < changed < 130
    assert EdgePad(1.0)(torch.ones(0), random.Random(0)).numel() == 0
    one = EdgePad(1.0)(speech, random.Random(3))
    assert torch.equal(one, EdgePad(1.0)(speech, random.Random(3)))


def tone(freq: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * 16000), dtype=torch.float64) / 16000
    return (0.1 * torch.sin(2 * torch.pi * freq * t)).float()


def gain_db(before: torch.Tensor, after: torch.Tensor) -> float:
    return 20 * torch.log10(after.std() / before.std()).item()


def test_random_eq_gives_each_frequency_the_gain_of_its_curve():
    eq = RandomEQ(1.0, max_db=10.0)
    gains = [6.0, -6.0, 10.0, -10.0, 0.0, 3.0]  # at 100 ... 6000 Hz, log-spaced
    anchors = np.geomspace(RandomEQ.LOW_HZ, RandomEQ.HIGH_HZ, RandomEQ.ANCHORS)
    for f, g in zip(anchors, gains):
        wav = tone(round(f))  # whole cycles in the clip: no leakage between bins
        assert gain_db(wav, eq.apply(wav, gains)) == pytest.approx(g, abs=0.3)
    # between anchors the curve is linear in log frequency; beyond them, flat
    middle = float(np.sqrt(anchors[0] * anchors[1]))
    assert eq.curve_db(np.array([middle]), gains)[0] == pytest.approx(0.0, abs=1e-9)
    assert eq.curve_db(np.array([20.0, 7900.0]), gains).tolist() == [6.0, 3.0]


def test_random_eq_draws_within_its_range_and_probability(speech):
    eq = RandomEQ(1.0, max_db=6.0)
    out = eq(speech, random.Random(0))
    assert out.shape == speech.shape and out.dtype == speech.dtype
    assert not torch.equal(out, speech)
    assert torch.equal(out, eq(speech, random.Random(0)))  # the rng decides
    for i in range(20):  # a tone anywhere gets at most +-6 dB
        wav = tone(random.Random(i).choice([200, 700, 1500, 4000]))
        assert abs(gain_db(wav, eq(wav, random.Random(i)))) <= 6.0 + 0.3
    half = RandomEQ(0.5)
    changed = sum(half(speech, random.Random(i)) is not speech for i in range(200))
    assert 70 < changed < 130
    assert RandomEQ(0.0)(speech, random.Random(0)) is speech


@pytest.mark.parametrize("prob,max_db", [(-0.1, 10.0), (1.5, 10.0), (0.5, -1.0)])
def test_bad_eq_settings_are_refused(prob, max_db):
    with pytest.raises(ValueError):
        RandomEQ(prob, max_db)


def test_random_eq_from_config():
    from asr.features.augment import AugmentConfig

    assert RandomEQ.from_config(AugmentConfig()) is None
    made = RandomEQ.from_config(AugmentConfig(eq_prob=0.5, eq_max_db=8.0))
    assert (made.prob, made.max_db) == (0.5, 8.0)


def peak_hz(warp, logmel: torch.Tensor) -> float:
    """Centre frequency of the mel bin with the most energy, averaged over time."""
    return float(warp.centres[int(logmel[0].mean(0).argmax())])


def test_vocal_tract_warp_moves_each_frequency_by_its_factor():
    from asr.features.augment import AugmentConfig
    from asr.features.frontend import FeatureConfig, LogMel
    from asr.features.spec_augment import VocalTractWarp

    logmel = LogMel(FeatureConfig())
    warp = VocalTractWarp(AugmentConfig(vtlp_prob=1.0), 16000, 80)
    # the filter centres it interpolates between are torchaudio's filters' peaks
    peaks = logmel.mel.mel_scale.fb.argmax(0).numpy() * 8000 / 256
    assert np.abs(peaks - warp.centres).max() < 16.0  # half an FFT bin
    for freq in (500, 1000, 2500):
        feats, _ = logmel(tone(freq)[None], torch.tensor([16000]))
        for factor in (0.9, 1.1):
            moved = peak_hz(warp, warp.apply(feats, [factor]))
            # within a mel bin (<= 6% above 1 kHz) of freq * factor
            assert moved == pytest.approx(freq * factor, rel=0.07)
        assert warp.apply(feats, [1.0]).allclose(feats, atol=1e-5)
    # above the knee the warp runs straight to the Nyquist frequency: full band
    for factor in (0.8, 1.2):
        top = warp.warp_hz(np.array([0.0, 7000.0, 8000.0]), factor)
        assert top[0] == 0.0 and top[2] == pytest.approx(8000.0) and top[1] < 8000


def test_vocal_tract_warp_draws_per_utterance_on_normalised_frames():
    from asr.features.augment import AugmentConfig
    from asr.features.spec_augment import VocalTractWarp

    mean, std = torch.randn(80), torch.rand(80) + 0.5
    feats = torch.randn(64, 30, 80)
    same = VocalTractWarp(
        AugmentConfig(vtlp_prob=1.0, vtlp_range=[1.0, 1.0]), 16000, 80
    )
    assert same(feats, mean, std).allclose(feats, atol=1e-5)  # undone normalisation
    torch.manual_seed(0)
    half = VocalTractWarp(AugmentConfig(vtlp_prob=0.5), 16000, 80)(feats, mean, std)
    changed = (half - feats).abs().amax(dim=(1, 2)) > 1e-4
    assert 16 < int(changed.sum()) < 48
    torch.manual_seed(0)
    assert torch.equal(
        half, VocalTractWarp(AugmentConfig(vtlp_prob=0.5), 16000, 80)(feats, mean, std)
    )  # torch's generator decides, as for SpecAugment
    assert VocalTractWarp.from_config(AugmentConfig(), 16000, 80) is None


@pytest.mark.parametrize(
    "prob,span", [(1.5, [0.9, 1.1]), (0.5, [1.1, 0.9]), (0.5, [0.2, 1.0])]
)
def test_bad_vocal_tract_warp_settings_are_refused(prob, span):
    from asr.features.augment import AugmentConfig
    from asr.features.spec_augment import VocalTractWarp

    with pytest.raises(ValueError):
        VocalTractWarp(AugmentConfig(vtlp_prob=prob, vtlp_range=span), 16000, 80)
