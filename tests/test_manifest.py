"""asr.data.Manifest: lazy manifests for corpora beyond memory."""

from __future__ import annotations

import gc
import json
import pickle
import random
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from asr.data.dataset import SpeechDataset
from asr.data.manifest import (
    Manifest,
    ManifestError,
    Utterance,
    index_path,
    read_manifest,
    sample_indices,
)
from asr.data.sampler import DurationBatchSampler
from asr.data.text import CharTokenizer

BAD_LINES = {  # line number (1-based) -> a bad line
    3: "{not json",
    10: '{"duration": 1.0}',
    11: "",  # blank: skipped silently
    25: '{"audio_filepath": "x.wav", "duration": -3}',
    40: "[1, 2]",
}


def expected(i: int) -> tuple[str, float, str, str]:
    """(path, duration, text, speaker) of the i-th generated utterance."""
    return f"a/{i % 100}/u{i}.flac", 1 + (i % 997) / 100, f"words of {i}", f"s{i % 7}"


def write_big_manifest(path: Path, n: int) -> None:
    """``n`` valid lines, with the BAD_LINES in between at their line numbers."""
    with open(path, "w", encoding="utf-8") as f:
        i, line_no = 0, 1
        while i < n:
            if line_no in BAD_LINES:
                f.write(BAD_LINES[line_no] + "\n")
            else:
                audio, dur, text, spk = expected(i)
                f.write(
                    f'{{"audio_filepath": "{audio}", "duration": {dur}, '
                    f'"text": "{text}", "speaker": "{spk}"}}\n'
                )
                i += 1
            line_no += 1


def check_random_access(m: Manifest, n: int, root: Path) -> None:
    for i in [0, 1, n - 1, *random.Random(0).sample(range(n), 300)]:
        audio, dur, text, spk = expected(i)
        assert m[i] == Utterance(str(root / audio), dur, text, spk)
        assert m.durations[i] == dur


@pytest.mark.slow
def test_a_million_lines_are_indexed_compactly_and_read_on_demand(tmp_path):
    n = 1_000_000
    path = tmp_path / "big.jsonl"
    write_big_manifest(path, n)
    t0 = time.perf_counter()
    m = Manifest(path)
    seconds = time.perf_counter() - t0
    assert len(m) == n and seconds < 120
    assert set(vars(m)) == {"path", "offsets", "durations"}
    assert m.offsets.nbytes + m.durations.nbytes == 16 * n  # no per-line objects
    gc.collect()
    assert not any(type(o) is Utterance for o in gc.get_objects())
    check_random_access(m, n, tmp_path)
    assert m[-1] == m[n - 1] and len(m[5:8]) == 3
    with pytest.raises(IndexError):
        m[n]
    t0 = time.perf_counter()  # a restart reads the cached index, not the manifest
    again = Manifest(path)
    assert time.perf_counter() - t0 < 0.25 * seconds
    assert np.array_equal(again.offsets, m.offsets)


def test_index_memory_is_bounded(tmp_path):
    """Measured here: a list of Utterances takes ~400 bytes a line (40 MB for
    these 100k lines); the index holds 16 bytes a line."""
    n = 100_000
    path = tmp_path / "m.jsonl"
    write_big_manifest(path, n)
    tracemalloc.start()
    try:
        m = Manifest(path, cache=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(m) == n
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB while indexing {n} lines"
    check_random_access(m, n, tmp_path)


def test_bad_lines_are_reported_and_skipped_like_read_manifest(tmp_path, caplog):
    path = tmp_path / "m.jsonl"
    write_big_manifest(path, 60)
    m = Manifest(path)
    assert list(m) == read_manifest(path)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2 * 4  # four bad lines, reported by both readers
    assert any("m.jsonl:3: skipped" in s for s in skipped)
    assert any("m.jsonl:40: skipped" in s for s in skipped)
    caplog.clear()
    assert len(Manifest(path)) == 60  # from the cache: the count, not each line
    assert "4 bad line(s) skipped" in caplog.text


def test_cache_follows_the_file_and_is_optional(tmp_path):
    path = tmp_path / "m.jsonl"
    write_big_manifest(path, 50)
    assert len(Manifest(path)) == 50 and index_path(path).is_file()
    write_big_manifest(path, 70)  # changed size: the stale index is not used
    assert len(Manifest(path)) == 70
    other = tmp_path / "n.jsonl"
    write_big_manifest(other, 5)
    assert len(Manifest(other, cache=False)) == 5
    assert not index_path(other).exists()


def test_unwritable_folder_still_indexes(tmp_path, monkeypatch):
    def refuse(*args):
        raise PermissionError("read-only file system")

    monkeypatch.setattr("asr.data.manifest.os.replace", refuse)
    path = tmp_path / "m.jsonl"
    write_big_manifest(path, 8)
    assert len(Manifest(path)) == 8
    assert not index_path(path).exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_errors_name_the_manifest(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        Manifest(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text("garbage\n\n")
    with pytest.raises(ManifestError, match="bad.jsonl: the manifest has no valid"):
        Manifest(tmp_path / "bad.jsonl")


def test_texts_stream_and_feed_the_tokenizer_and_sampler(tmp_path):
    path = tmp_path / "m.jsonl"
    lines = [
        {"audio_filepath": f"{k}.wav", "duration": d, "text": t}
        for k, (d, t) in enumerate([(2.0, "b a"), (1.0, "c"), (3.0, "")])
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    m = Manifest(path)
    assert list(m.texts()) == ["b a", "c", ""]
    assert CharTokenizer.build(m.texts()).symbols[1:] == [" ", "a", "b", "c"]
    sampler = DurationBatchSampler(m.durations, max_seconds=3.0, shuffle=False)
    assert sampler.batches == [[1, 0], [2]]


def test_dataset_reads_items_from_a_lazy_manifest(an4_manifest):
    m = Manifest(an4_manifest)
    tok = CharTokenizer.build(m.texts())
    ds = SpeechDataset(m, tok)
    assert ds.utts is m  # not copied into a list
    wav, target, i = ds[2]
    assert i == 2 and tok.decode(target.tolist()) == m[2].text
    assert abs(len(wav) / 16000 - m.durations[2]) < 1e-3
    again = pickle.loads(pickle.dumps(ds))  # as DataLoader workers may receive it
    assert again.utts[2] == m[2]


def test_sample_indices():
    assert sample_indices(5, 0) == range(5) and sample_indices(5, 9) == range(5)
    picked = sample_indices(1_000_000, 100, seed=3)
    assert len(set(picked)) == 100 and picked == sorted(picked)
    assert picked == sample_indices(1_000_000, 100, seed=3)
    assert picked != sample_indices(1_000_000, 100, seed=4)
