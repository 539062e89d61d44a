from __future__ import annotations

import numpy as np
import torch

from asr.features.frontend import FeatureConfig, Frontend, LogMel, compute_cmvn_stats


def test_logmel_shapes_and_lengths():
    cfg = FeatureConfig()
    assert (cfg.win_length, cfg.hop_length, cfg.n_mels) == (400, 160, 80)
    wavs = torch.randn(3, 16000)
    lens = torch.tensor([16000, 8000, 100])
    feats, feat_lens = LogMel(cfg)(wavs, lens)
    # 1 s of audio: (16000 - 512) // 160 + 1 = 97 frames of 80 mels
    assert feats.shape == (3, 97, 80)
    assert feat_lens.tolist() == [97, 47, 1]
    assert torch.isfinite(feats).all()


def test_logmel_frames_do_not_see_padding():
    logmel = LogMel(FeatureConfig())
    wav = torch.randn(1, 12345)
    alone, n = logmel(wav, torch.tensor([12345]))
    padded = torch.cat([wav, torch.randn(1, 5000)], dim=1)  # noise, not zeros
    batch, _ = logmel(padded, torch.tensor([12345]))
    torch.testing.assert_close(batch[:, : n[0]], alone[:, : n[0]])


def test_cmvn_stats_normalise_the_corpus():
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    corpus = [
        (rng.standard_normal(8000 + 1000 * k) * (k + 1) * 0.1).astype(np.float32)
        for k in range(4)
    ]
    mean, std = compute_cmvn_stats(corpus, cfg)
    front = Frontend(cfg)
    front.cmvn.set_stats(mean, std)
    frames = torch.cat(
        [front(torch.from_numpy(w)[None], torch.tensor([len(w)]))[0][0] for w in corpus]
    )
    torch.testing.assert_close(frames.mean(0), torch.zeros(80), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        frames.std(0, unbiased=False), torch.ones(80), atol=1e-3, rtol=0
    )


def test_no_floor_by_default_and_none_in_checkpoints():
    logmel = LogMel(FeatureConfig())
    assert torch.equal(logmel.power_floor, torch.zeros(80))
    assert "power_floor" not in logmel.state_dict()  # old checkpoints still load
    wavs = torch.randn(1, 8000)
    spec = logmel.mel.spectrogram(wavs[:, : 512 + 160 * 46])  # torch.stft's frames
    plain = logmel.mel.mel_scale(spec).transpose(1, 2).clamp(min=1e-10).log()
    torch.testing.assert_close(logmel(wavs, torch.tensor([8000]))[0], plain)


def test_the_floor_is_white_noise_at_that_level():
    """Silence reads as the floor itself, and the floor is what 30 s of white
    noise at -70 dBFS measures without one: within 2% over all bands, 12% in
    each (the lowest bands hold one or two FFT bins, so their estimate is noisy)."""
    floored = LogMel(FeatureConfig(floor_dbfs=-70.0))
    feats, _ = floored(torch.zeros(1, 16000), torch.tensor([16000]))
    torch.testing.assert_close(feats[0].exp(), floored.power_floor.expand(97, -1))
    n = 30 * 16000
    noise = np.random.default_rng(0).normal(0, 10 ** (-70 / 20), n)
    wav = torch.from_numpy(noise).float()[None]
    measured, _ = LogMel(FeatureConfig())(wav, torch.tensor([n]))
    ratio = measured[0].exp().mean(0) / floored.power_floor
    assert abs(ratio.mean() - 1) < 0.02 and (ratio - 1).abs().max() < 0.12


def test_the_floor_makes_digital_silence_and_faint_hiss_alike():
    """A clip's pauses as exact zeros or as hiss at -100 dBFS: over 4 apart
    (natural log) on average in the pause frames without the floor, under 0.01
    everywhere with it; the speech frames hardly move (over 40 dB above it)."""
    rng = np.random.default_rng(1)
    speech = torch.from_numpy(rng.normal(0, 0.05, 8000)).float()  # -26 dBFS
    hiss = torch.from_numpy(rng.normal(0, 1e-5, 8000)).float()
    silent = torch.cat([torch.zeros(8000), speech])[None]
    hissing = torch.cat([hiss, speech])[None]
    lens = torch.tensor([16000])
    pause = slice(0, 45)  # frames wholly in the first 0.5 s
    gaps = {}
    for floor in (None, -70.0):
        logmel = LogMel(FeatureConfig(floor_dbfs=floor))
        a, b = logmel(silent, lens)[0][0], logmel(hissing, lens)[0][0]
        gaps[floor] = (a[pause] - b[pause]).abs()
    assert gaps[None].mean() > 4.0 and gaps[-70.0].max() < 0.01
    plain = LogMel(FeatureConfig())(silent, lens)[0][0]
    floored = LogMel(FeatureConfig(floor_dbfs=-70.0))(silent, lens)[0][0]
    assert (floored[55:] - plain[55:]).abs().max() < 0.01
