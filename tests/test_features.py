from __future__ import annotations

import numpy as np
import torch

from asr.features import FeatureConfig, Frontend, LogMel, compute_cmvn_stats


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
