from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from asr.data.dataset import SpeechDataset, collate, speed_perturb
from asr.data.manifest import ManifestError, read_manifest
from asr.data.sampler import DurationBatchSampler
from asr.data.text import CharTokenizer


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    m = tmp_path / "sub" / "m.jsonl"
    m.write_text(
        json.dumps(
            {
                "audio_filepath": "a/x.wav",
                "duration": 1.5,
                "text": "hi",
                "speaker": "s1",
            }
        )
        + "\n"
        + json.dumps({"audio_filepath": "/abs/y.wav", "duration": 2})
        + "\n"
    )
    a, b = read_manifest(m)
    assert Path(a.audio_filepath) == tmp_path / "sub" / "a" / "x.wav"
    assert (a.text, a.speaker, a.duration) == ("hi", "s1", 1.5)
    assert b.audio_filepath == "/abs/y.wav" and b.text == "" and b.speaker is None


def test_bad_lines_are_reported_and_skipped(tmp_path, caplog):
    m = tmp_path / "m.jsonl"
    m.write_text(
        "\n".join(
            [
                '{"audio_filepath": "ok.wav", "duration": 1.0, "text": "a"}',
                "{not json",
                '{"duration": 1.0}',
                '{"audio_filepath": "x.wav", "duration": -3}',
                "[1, 2]",
            ]
        )
        + "\n"
    )
    utts = read_manifest(m)
    assert [Path(u.audio_filepath).name for u in utts] == ["ok.wav"]
    assert len([r for r in caplog.records if "skipped" in r.message]) == 4
    assert "m.jsonl:2" in caplog.text


def test_manifest_without_valid_lines_is_an_error(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text("garbage\n")
    with pytest.raises(ManifestError, match="m.jsonl"):
        read_manifest(m)
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "missing.jsonl")


def test_dataset_and_collate_on_real_clips(an4_manifest):
    utts = read_manifest(an4_manifest)
    tok = CharTokenizer.build(u.text for u in utts)
    ds = SpeechDataset(utts, tok)
    batch = collate([ds[0], ds[3], ds[1]])
    assert batch.wavs.shape == (3, int(batch.wav_lens.max()))
    assert batch.indices == [0, 3, 1]
    for row, i in enumerate(batch.indices):
        n = batch.target_lens[row]
        assert tok.decode(batch.targets[row, :n].tolist()) == utts[i].text
        assert (batch.targets[row, n:] == 0).all()
        assert (batch.wavs[row, batch.wav_lens[row] :] == 0).all()


def test_unreadable_item_is_skipped_by_collate(tmp_path, an4_manifest):
    utts = read_manifest(an4_manifest)
    utts[1].audio_filepath = str(tmp_path / "gone.wav")
    ds = SpeechDataset(utts, CharTokenizer.build(u.text for u in utts))
    assert ds[1] is None
    assert collate([ds[0], ds[1]]).indices == [0]
    assert collate([ds[1]]) is None


def test_speed_perturbation_is_deterministic_per_epoch(an4_manifest):
    utts = read_manifest(an4_manifest)
    tok = CharTokenizer.build(u.text for u in utts)
    ds = SpeechDataset(utts, tok, speed_factors=[0.9, 1.1], seed=3)
    lens = [len(ds[i][0]) for i in range(len(ds))]
    assert lens == [len(ds[i][0]) for i in range(len(ds))]
    plain = [len(SpeechDataset(utts, tok)[i][0]) for i in range(len(ds))]
    assert all(abs(a / b - 1) > 0.05 for a, b in zip(lens, plain))
    assert len(speed_perturb(torch.zeros(16000), 1.1)) == pytest.approx(
        16000 / 1.1, abs=2
    )


def test_sampler_caps_seconds_and_size_and_covers_everything():
    durations = [0.5 + (i * 7 % 13) * 0.4 for i in range(100)]
    s = DurationBatchSampler(durations, max_seconds=10.0, max_size=6, seed=1)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(100))
    for b in batches:
        assert len(b) <= 6
        assert sum(durations[i] for i in b) <= 10.0 or len(b) == 1
        spread = max(durations[i] for i in b) - min(durations[i] for i in b)
        assert spread <= 1.2  # bucketed: similar lengths together


def test_sampler_epochs_shuffle_deterministically_and_resume():
    durations = [float(i % 17 + 1) for i in range(80)]
    s = DurationBatchSampler(durations, max_seconds=20.0, sortagrad=True, seed=5)
    s.set_epoch(0)
    first = list(s)
    assert first == s.batches  # sortagrad: short to long in the first epoch
    s.set_epoch(1)
    e1 = list(s)
    assert e1 != first and sorted(map(tuple, e1)) == sorted(map(tuple, first))
    s.set_epoch(1, start_batch=3)
    assert list(s) == e1[3:] and len(s) == len(e1) - 3
    other = DurationBatchSampler(durations, max_seconds=20.0, sortagrad=True, seed=5)
    other.set_epoch(1)
    assert list(other) == e1
