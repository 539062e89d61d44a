from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.audio.files import load_audio, resample
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.stream.recognizer import ChunkedEncoder, StreamingConfig, StreamingRecognizer
from tests.conftest import clip_rows


@pytest.fixture(scope="module")
def model():
    return load_model(default_model_path())[:2]


@pytest.fixture(scope="module")
def plain_model():
    """The bundled model without level normalisation (a per-utterance gain that
    a stream can only estimate from its start)."""
    net, tok = load_model(default_model_path())[:2]
    net.feature_cfg.level_db = None
    return net, tok


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (3e-4 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def feed(enc: ChunkedEncoder, wav: np.ndarray, block: int) -> torch.Tensor:
    for k in range(0, len(wav), block):
        enc.accept(wav[k : k + block])
    enc.flush()
    return enc.committed()


def test_one_chunk_over_the_utterance_equals_the_full_bilstm(plain_model):
    net, _ = plain_model
    wav = load_audio(clip_rows()[3][0])
    with torch.no_grad():
        full, n = net(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    chunked = feed(ChunkedEncoder(net, chunk_frames=10_000, right_frames=0), wav, 777)
    assert chunked.shape == full[0, : n[0]].shape
    torch.testing.assert_close(chunked, full[0, : n[0]], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("hop_ms", [10.0, 5.0])  # 40 and 20 ms encoder frames
def test_chunked_gru_encoder_equals_the_full_model(hop_ms):
    from asr.features.frontend import FeatureConfig
    from asr.model.acoustic import ASRModel, ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig(conv_channels=8, hidden_size=32, n_layers=2, rnn="gru")
    net = ASRModel(cfg, FeatureConfig(hop_ms=hop_ms), vocab_size=12).eval()
    wav = load_audio(clip_rows()[0][0])
    with torch.no_grad():
        full, n = net(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    chunked = feed(ChunkedEncoder(net, chunk_frames=10_000, right_frames=0), wav, 999)
    torch.testing.assert_close(chunked, full[0, : n[0]], atol=1e-4, rtol=1e-4)


def test_chunked_output_does_not_depend_on_block_sizes(model):
    wav = load_audio(clip_rows()[4][0])
    a = feed(ChunkedEncoder(model[0], 6, 4), wav, 480)
    b = feed(ChunkedEncoder(model[0], 6, 4), wav, 5000)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_no_recomputation_from_the_utterance_start(model):
    """Each forward LSTM sees every frame once plus the right context per chunk."""
    enc = ChunkedEncoder(model[0], chunk_frames=6, right_frames=4)
    seen = []
    fwd = enc.layers[0][0]
    fwd.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[1]))
    wav = load_audio(clip_rows()[3][0])
    feed(enc, wav, 480)
    n_chunks = -(-enc.n_x // 6)
    assert sum(seen) <= enc.n_x + 4 * n_chunks


def test_right_context_changes_and_helps(model):
    """The backward direction sees the right context: R = 0 is a different and
    worse model than R = 4 on the same clips."""
    net, tok = model
    refs, hyps = {0: [], 4: []}, {0: [], 4: []}
    for path, text in clip_rows():
        wav = load_audio(path)
        for r in (0, 4):
            lp = feed(ChunkedEncoder(net, 6, r), wav, 4000)
            from asr.decode.decoder import greedy_decode

            hyps[r].append(
                greedy_decode(lp[None], torch.tensor([len(lp)]), tok)[0].text
            )
            refs[r].append(text)
    assert hyps[0] != hyps[4]
    assert score(refs[4], hyps[4]).cer <= score(refs[0], hyps[0]).cer


def run(rec: StreamingRecognizer, wav: np.ndarray, rate: int = 16000, block: int = 480):
    events = []
    for k in range(0, len(wav), block):
        events += rec.feed(wav[k : k + block], rate)
    return events + rec.flush()


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_endpointing_partials_and_final_on_a_real_clip(model, rate):
    net, tok = model
    path, ref = clip_rows()[3]
    wav = np.concatenate([quiet(0.8), load_audio(path), quiet(1.0, 1)])
    if rate != 16000:
        wav = resample(wav, 16000, rate)
    events = run(StreamingRecognizer(net, tok), wav, rate, block=rate // 50)
    finals = [e for e in events if e.type == "final"]
    partials = [e for e in events if e.type == "partial"]
    assert len(finals) == 1
    final = finals[0]
    assert 0.3 <= final.start <= 1.2
    assert final.end < len(wav) / rate  # the endpointer ended it, not the flush
    assert score([ref], [final.text]).cer <= 0.25
    ends = [final.start] + [p.end for p in partials] + [final.end]
    speech = [b - a for a, b in zip(ends, ends[1:])]
    assert len(partials) >= 5 and max(speech[1:-1]) <= 0.3 + 1e-6
    assert partials[-1].text  # something was heard before the end


def test_two_utterances_two_finals_and_silence_none(model):
    net, tok = model
    a, b = load_audio(clip_rows()[0][0]), load_audio(clip_rows()[1][0])
    wav = np.concatenate([quiet(0.5), a, quiet(1.2, 1), b, quiet(1.2, 2)])
    finals = [e for e in run(StreamingRecognizer(net, tok), wav) if e.type == "final"]
    assert [f.text for f in finals][:1] == ["stop"] and len(finals) == 2
    assert finals[0].end <= finals[1].start
    assert run(StreamingRecognizer(net, tok), quiet(3.0)) == []
    assert run(StreamingRecognizer(net, tok), np.zeros(48000, np.float32)) == []


def test_chunked_final_mode(model):
    net, tok = model
    path, ref = clip_rows()[2]
    wav = np.concatenate([quiet(0.5), load_audio(path), quiet(1.0, 1)])
    rec = StreamingRecognizer(net, tok, StreamingConfig(final="chunked"))
    (final,) = [e for e in run(rec, wav) if e.type == "final"]
    assert score([ref], [final.text]).cer <= 0.35


def test_level_gain_is_set_by_the_first_half_second(model):
    from asr.features.frontend import level_gains
    from asr.stream.recognizer import GAIN_SECONDS

    net, _ = model
    from asr.audio.energy import speech_islands

    wav = load_audio(clip_rows()[4][0])
    onset = int(speech_islands(wav)[0][0] * 16000)  # a stream starts at speech
    wav = wav[onset:] * 0.05  # a quiet recording
    enc = ChunkedEncoder(net, 6, 4)
    enc.accept(wav[:4000])
    assert enc.gain is None and enc.n_feats == 0  # waits for 0.5 s
    enc.accept(wav[4000:])
    n = int(GAIN_SECONDS * 16000)
    head = torch.from_numpy(wav[:n])[None]
    expected = level_gains(head, torch.tensor([n]), net.feature_cfg.level_db)
    torch.testing.assert_close(enc.gain, expected)
    assert enc.gain.item() > 5  # a quiet clip is brought up
