from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.audio.files import load_audio, resample
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.stream.recognizer import (
    ChunkedEncoder,
    PauseDetector,
    StreamingConfig,
    StreamingRecognizer,
)
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


def test_pause_detector_reports_each_pause_once_when_it_is_long_enough():
    det = PauseDetector(StreamingConfig(pause_ms=90, pause_db=20))
    loud = np.full(480, 0.1, np.float32)
    soft = loud * 0.05  # 26 dB under the loudest frame
    det.reset([loud])
    steps = (
        [(soft, False)] * 4  # 90 ms unvoiced and quiet: once, not again
        + [(loud, False)]  # unvoiced to the VAD but loud: weak speech, not a pause
        + [(soft, True)]  # quiet but voiced
        + [(soft, False)] * 3
    )
    assert [det.step(f, v) for f, v in steps] == [
        *[False, False, True, False],
        False,
        False,
        *[False, False, True],
    ]
    det.reset([soft])  # a new utterance: its own loudest frame
    assert not any(det.step(soft * 0.5, False) for _ in range(5))  # 6 dB under
    never = PauseDetector(StreamingConfig(pause_ms=0))
    assert not any(never.step(soft, False) for _ in range(50))
    # by level alone: quiet frames count even where the VAD still says voiced
    level = PauseDetector(StreamingConfig(pause_ms=90, pause_db=20, pause_vad=False))
    level.reset([loud])
    steps = [(soft, True)] * 3 + [(loud, False)] + [(soft, False)] * 3
    assert [level.step(f, v) for f, v in steps] == [
        *[False, False, True],
        False,
        *[False, False, True],
    ]


def test_peek_is_the_flush_of_the_audio_so_far_and_changes_nothing(model):
    from asr.audio.energy import speech_islands

    net, _ = model
    wav = load_audio(clip_rows()[1][0])
    wav = wav[int(speech_islands(wav)[0][0] * 16000) :]
    n = 12_000  # past the level gain's half second, mid-utterance
    enc, alone, plain = (ChunkedEncoder(net, 6, 4) for _ in range(3))
    enc.accept(wav[:n])
    alone.accept(wav[:n])
    alone.flush()
    torch.testing.assert_close(enc.peek(), alone.committed())
    plain.accept(wav[:n])
    for e in (enc, plain):  # the peek left no trace in what follows
        e.accept(wav[n:])
        e.flush()
    torch.testing.assert_close(enc.committed(), plain.committed())


def test_pause_events_come_before_the_endpointer_ends_the_utterance(model):
    from asr.audio.energy import speech_islands

    net, tok = model
    stop = load_audio(clip_rows()[0][0])
    lead = quiet(0.5)
    wav = np.concatenate([lead, stop, quiet(1.0, 1)])
    speech_end = len(lead) / 16000 + speech_islands(stop)[-1][1]
    cfg = StreamingConfig(padding_ms=180, pause_ms=90)
    events = run(StreamingRecognizer(net, tok, cfg), wav)
    (final,) = [e for e in events if e.type == "final"]
    pause = [e for e in events if e.type == "pause"][-1]
    assert pause.start == final.start and pause.text == final.text == "stop"
    # three unvoiced VAD frames (webrtcvad says voiced for ~0.1 s past the speech)
    # where the endpointer waits for 5 of its 6
    assert speech_end + 0.09 <= pause.end <= speech_end + 0.3
    assert pause.end <= final.end - 0.06
    assert pause.log_probs.shape[1] == final.log_probs.shape[1] == len(tok)
    # off by default (dictation)
    assert {e.type for e in run(StreamingRecognizer(net, tok), wav)} == {
        "partial",
        "final",
    }


def test_the_cli_listens_before_the_model_loads_and_loses_nothing(monkeypatch, capsys):
    # `asr stream` opens its source first (the microphone's blocks queue up, a
    # replayed file's clock starts), then loads the model: what is said during
    # the load is heard, later, and the results are those of an idle start.
    import json

    import asr.cli.stream as cli_stream
    from asr.cli.app import main

    path, _ = clip_rows()[2]
    order: list[str] = []
    real_replay, real_load = cli_stream.replay, cli_stream.load_transcriber

    def replay(*args):
        for k, item in enumerate(real_replay(*args)):
            if k == 0:
                order.append("first block")
            yield item

    def load_transcriber(*args):
        order.append("model load")
        return real_load(*args)

    monkeypatch.setattr(cli_stream, "replay", replay)
    monkeypatch.setattr(cli_stream, "load_transcriber", load_transcriber)
    finals = []
    for speed in ("0", "4"):  # 4: paced, so the clock runs during the load
        order.clear()
        assert main(["stream", "--input", str(path), "--speed", speed, "--json"]) == 0
        assert order == ["first block", "model load"]
        events = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        finals.append([e for e in events if e["type"] == "final"])
    assert finals[0] == finals[1] and finals[0][0]["text"]


def test_bench_listen_times_the_listening_line_and_the_first_result():
    import os
    import sys

    from scripts import bench_listen

    script = (
        "import sys, time; time.sleep(0.2); print('listening on x', file=sys.stderr,"
        " flush=True); time.sleep(0.3); print('stop', flush=True)"
    )
    t = bench_listen.timed_run([sys.executable, "-c", script], dict(os.environ), ".")
    # (the sleeps give lower bounds only; how late a reader thread notes a line
    # depends on the machine's load)
    assert 0.2 <= t["listening"] < t["first result"] <= t["exit"]
    assert t["first result"] >= 0.5
