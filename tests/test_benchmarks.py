"""The benchmark scripts' core functions run on tiny inputs and return sane results.

No timing is asserted: only structure, and the equalities the scripts rely on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.audio.files import load_audio
from asr.decode.decoder import DecodingOptions
from asr.decode.metrics import score
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ModelConfig
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.train.config import DataConfig, TrainConfig, TrainerConfig
from asr.transcribe import Transcriber
from scripts import (
    bench_bandwidth,
    bench_edges,
    bench_features,
    bench_inference,
    bench_memory,
    bench_train_step,
)
from tests.conftest import clip_rows


def clip_wavs(n: int, seconds: float = 1.0) -> list[np.ndarray]:
    """The first ``seconds`` of ``n`` bundled clips: enough to run, cheap to time."""
    return [load_audio(path)[: int(16000 * seconds)] for path, _ in clip_rows()[:n]]


def tiny_trainer(manifest, tmp_path):
    cfg = TrainConfig(
        model=ModelConfig(conv_channels=4, hidden_size=16, n_layers=2),
        data=DataConfig(
            train_manifest=str(manifest),
            dev_manifest=str(manifest),
            max_batch_seconds=6.0,
            max_batch_size=2,
        ),
        trainer=TrainerConfig(out_dir=str(tmp_path / "run"), device="cpu"),
    )
    bench_train_step.neutral_cmvn(cfg, tmp_path)
    return bench_train_step.make_trainer(cfg)


def test_an4_config_is_the_recipe_config_on_the_cpu(tmp_path):
    cfg = bench_train_step.an4_config(tmp_path / "train.jsonl", tmp_path, threads=1)
    assert cfg.model.hidden_size == 320 and cfg.model.n_layers == 3
    assert cfg.data.max_batch_seconds == 40.0 and cfg.trainer.device == "cpu"


def test_train_step_bench_runs_on_two_batches(an4_manifest, tmp_path):
    trainer = tiny_trainer(an4_manifest, tmp_path)
    batches, load_s = bench_train_step.load_batches(trainer, 2)
    assert len(batches) == 2 and len(load_s) == 2
    summary = bench_train_step.measure(trainer, batches, repeats=1, warmup=1).summary()
    assert summary["n"] == 2
    for key in ("step_ms", "floor_ms", "network_ms", "padded_ms", "step_over_floor"):
        assert summary[key] > 0, key
    assert trainer.progress.global_step == 3  # warm-up + two timed steps


def test_padded_floor_computes_what_the_packed_floor_computes(an4_manifest, tmp_path):
    trainer = tiny_trainer(an4_manifest, tmp_path)
    floor = bench_train_step.LSTMFloor(trainer)
    padded = bench_train_step.PaddedLSTMFloor(floor)
    x = torch.randn(3, 9, floor.in_dim)
    lens = torch.tensor([9, 4, 6])
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    expected, _ = pad_packed_sequence(floor.lstm(packed)[0], batch_first=True)
    torch.testing.assert_close(padded(x, lens), expected, atol=1e-5, rtol=1e-5)


def test_feature_bench_runs_and_matches_librosa_with_htk_filters():
    wavs = clip_wavs(2)
    cfg = FeatureConfig(level_db=-25.0)
    medians = bench_features.measure(
        bench_features.methods(wavs, cfg, batch_size=2), repeats=1, warmup=0
    )
    assert len(medians) == 5
    assert all(wall > 0 and cpu >= 0 for wall, cpu in medians.values())
    agree = bench_features.agreement(wavs, cfg)
    assert agree["htk_max"] < 1e-2  # same filters: float rounding only
    assert agree["default_mean"] > 0.1  # Slaney filters: really different


def test_inference_bench_runs_for_two_batch_sizes():
    model, tok, _ = load_model(default_model_path())
    wavs = clip_wavs(3, seconds=0.5)
    batches = bench_inference.sorted_batches(wavs, 2)
    assert [len(n) for _, n in batches] == [2, 1]
    fns = bench_inference.runners(model, Transcriber(model, tok), wavs, [1, 2])
    medians = bench_inference.measure(fns, repeats=1, warmup=0)
    assert set(medians) == {(1, "logits"), (1, "greedy"), (2, "logits"), (2, "greedy")}
    assert all(t > 0 for t in medians.values())


def test_memory_bench_reads_the_peak_of_a_child_process(an4_manifest):
    info = bench_memory.measure(
        "inference",
        [f"--dev-manifest={an4_manifest}", "--device=cpu", "--threads=1"],
    )
    assert info["files"] == len(clip_rows())
    assert 50 < info["peak_rss_mib"] < 16 * 1024


def test_bandwidth_bench_scores_each_rate_like_a_plain_transcription(an4_manifest):
    from asr.data.manifest import read_manifest
    from asr.decode.metrics import score

    utts = read_manifest(an4_manifest)[:2]
    refs = [u.text for u in utts]
    clean = [torch.from_numpy(load_audio(u.audio_filepath)) for u in utts]
    audio = {r: bench_bandwidth.recorded_at(clean, r) for r in (16000, 8000)}
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(audio[16000], clean))
    for phone, wav in zip(audio[8000], clean):  # nothing above 4 kHz is left
        assert phone.shape == wav.shape
        high = np.abs(np.fft.rfft(phone))[int(len(phone) * 4200 / 16000) :]
        assert high.max() < 1e-2 * np.abs(np.fft.rfft(wav.numpy())).max()
    wers = bench_bandwidth.wer_per_version(default_model_path(), refs, audio)
    model, tok, _ = load_model(default_model_path())
    for rate, wavs in audio.items():
        hyps = Transcriber(model, tok).transcribe_waveforms(wavs)
        assert wers[rate] == 100 * score(refs, [h.text for h in hyps]).wer


def test_edges_bench_cuts_tight_and_adds_pauses_then_scores_each(an4_manifest):
    from asr.data.manifest import read_manifest
    from asr.features.edges import EdgeTrim

    utts = read_manifest(an4_manifest)[3:5]  # silence before and after the speech
    refs = [u.text for u in utts]
    clean = [torch.from_numpy(load_audio(u.audio_filepath)) for u in utts]
    audio = bench_edges.versions(clean)
    assert list(audio) == ["as recorded", "cut tight", "200 ms pauses"]
    for wav, tight, paused in zip(clean, audio["cut tight"], audio["200 ms pauses"]):
        start, end = EdgeTrim.speech_span(wav)
        assert np.array_equal(tight, wav[start:end].numpy()) and end - start < len(wav)
        assert np.array_equal(paused[3200:-3200], wav.numpy())
        assert 0 < np.abs(paused[:3200]).max() < 0.05 * np.abs(wav.numpy()).max()
    options = DecodingOptions(decoder="beam", lexicon=None)
    wers = bench_edges.wer_per_version(default_model_path(), refs, audio, options)
    model, tok, _ = load_model(default_model_path())
    for key, wavs in audio.items():
        hyps = Transcriber(model, tok, options).transcribe_waveforms(wavs)
        assert wers[key] == 100 * score(refs, [h.text for h in hyps]).wer


def test_throughput_bench_builds_the_recording_from_the_manifest(
    an4_manifest, tmp_path
):
    from scripts import bench_throughput

    out = tmp_path / "long.flac"
    seconds = bench_throughput.build(an4_manifest, out, minutes=0.5)
    assert seconds == 30.0 and sf_seconds(out) == 30.0
    first = load_audio(clip_rows()[0][0])
    np.testing.assert_allclose(load_audio(out)[: len(first)], first, atol=1e-4)


def sf_seconds(path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate
