"""Long files: streaming reads, cuts at pauses, global timestamps."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

import asr.transcribe as transcribe_module
from asr.audio.files import SAMPLE_RATE, load_audio, stream_audio
from asr.audio.padding import speech_span
from asr.data.batches import evenest_batch
from asr.decode.decoder import DecodingOptions
from asr.decode.metrics import score
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.transcribe import Transcriber, read_ahead, split_at_pauses
from tests.conftest import TEST_DATA, clip_rows

GAP = 0.8  # seconds of silence between clips


def bursts(n: int, seconds: float = 1.3, gap: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(0)
    parts = []
    for _ in range(n):
        parts += [
            0.3 * rng.standard_normal(int(seconds * SAMPLE_RATE)),
            np.zeros(int(gap * SAMPLE_RATE)),
        ]
    return np.concatenate(parts).astype(np.float32)


def test_split_at_pauses_cuts_in_silence_and_loses_nothing():
    wav = bursts(12)
    blocks = [wav[k : k + 7000] for k in range(0, len(wav), 7000)]
    pieces = list(split_at_pauses(blocks, max_seconds=4.0))
    assert len(pieces) > 1
    np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), wav)
    for start, piece in pieces:
        assert len(piece) <= 4.0 * SAMPLE_RATE
        assert start == pytest.approx(
            sum(len(p) for s, p in pieces if s < start) / SAMPLE_RATE
        )
    for start, _ in pieces[1:]:  # every cut lies in a silent gap
        cut = int(start * SAMPLE_RATE)
        assert np.abs(wav[cut - 800 : cut + 800]).max() == 0


def test_a_pause_after_the_limit_does_not_make_a_longer_piece():
    # 6 s of speech-like noise without a pause, a pause, then 2 s more, all in
    # one block (as a whole file read at once is): the piece before the pause
    # is cut at the limit, not at the pause
    rng = np.random.default_rng(4)
    loud = lambda s: 0.3 * rng.standard_normal(int(s * SAMPLE_RATE))  # noqa: E731
    wav = np.concatenate([loud(6.0), np.zeros(SAMPLE_RATE), loud(2.0)])
    wav = wav.astype(np.float32)
    pieces = list(split_at_pauses([wav], max_seconds=4.0))
    assert max(len(p) for _, p in pieces) <= 4.0 * SAMPLE_RATE
    np.testing.assert_array_equal(np.concatenate([p for _, p in pieces]), wav)


def test_evenest_batch_takes_pieces_of_one_length_under_the_budget():
    s = SAMPLE_RATE
    lengths = [10 * s, 3 * s, 10 * s, 3 * s, 10 * s, 25 * s, 3 * s, 9 * s]
    # sorted: 3 3 3 9 10 10 10 25; a 30 s budget fits three 10 s pieces
    assert sorted(evenest_batch(lengths, 30.0)) == [0, 2, 4]
    # 3 3 3 fills a 9 s budget, and has more audio than the even 8
    assert sorted(evenest_batch([3 * s, 4 * s, 3 * s, 8 * s, 3 * s], 9.0)) == [0, 2, 4]
    # a lone piece longer than the budget is a batch of its own
    assert evenest_batch([50 * s], 40.0) == [0]


def test_evenest_batch_passes_over_a_short_run_that_could_take_more():
    s = SAMPLE_RATE
    # the two 20 s pieces are even, but fill only 40 of 120 s; 5-6 s ones fill it
    lengths = [20 * s, 20 * s] + [5 * s] * 10 + [6 * s] * 10
    batch = evenest_batch(lengths, 120.0)
    assert all(lengths[i] <= 6 * s for i in batch)
    assert 90 <= len(batch) * 6 <= 120  # at least 3/4 of the budget, padded


def test_evenest_batch_is_the_best_run_by_its_definition():
    """Against a direct search over every start (random pools)."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        lengths = [int(x) for x in rng.integers(1, 40, rng.integers(1, 30))]
        budget = float(rng.integers(10, 120))
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        keys = []
        for start in range(len(order)):
            end = start + 1
            while (
                end < len(order) and (end - start + 1) * lengths[order[end]] <= budget
            ):
                end += 1
            run = [lengths[i] for i in order[start:end]]
            padded = len(run) * run[-1]
            key = (padded >= 0.75 * budget, sum(run) / padded, sum(run), -start)
            keys.append((key, start, end))
        _, start, end = max(keys)
        assert evenest_batch(lengths, budget / SAMPLE_RATE) == order[start:end]


def test_read_ahead_keeps_order_raises_in_place_and_stops_with_the_caller():
    assert list(read_ahead(iter(range(50)), 4)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ValueError("bad block")

    got = []
    with pytest.raises(ValueError, match="bad block"):
        for item in read_ahead(failing(), 4):
            got.append(item)
    assert got == [1, 2]

    made = []

    def endless():
        for k in range(10**6):
            made.append(k)
            yield k

    items = read_ahead(endless(), 3)
    assert [next(items) for _ in range(5)] == list(range(5))
    items.close()  # the caller stops: the thread ends, made no more than it held
    assert len(made) <= 5 + 3 + 2
    n = len(made)
    time.sleep(0.3)
    assert len(made) == n


def test_a_long_file_decoded_out_of_order_is_put_back_in_order(monkeypatch):
    """A small pool makes the long file's pieces decode out of time order; the
    transcript is still each piece's own text, in time order."""
    monkeypatch.setattr(transcribe_module, "POOL_SECONDS", 12.0)
    model, tok, _ = load_model(default_model_path())
    rows = clip_rows()
    gap = (3e-4 * np.random.default_rng(5).standard_normal(SAMPLE_RATE)).astype(
        np.float32
    )
    clips = [load_audio(p) for p, _ in rows]
    wav = np.concatenate([x for c in clips + clips[::-1] for x in (c, gap)])
    tr = Transcriber(model, tok, batch_seconds=3.0, max_segment_seconds=5.0)
    order = []
    decode = tr._decode_pieces
    tr._decode_pieces = lambda pending: (
        order.extend(o for o, _ in pending) or (decode(pending))
    )
    res = tr.transcribe_array("long", wav)
    assert order != sorted(order)  # the pool did not decode in time order
    pieces = list(split_at_pauses([wav], 5.0))
    assert len(order) == len(pieces)
    alone = tr.transcribe_waveforms([p for _, p in pieces])
    texts = [h.text for h in alone]
    assert [s.text for s in res.segments] == [t for t in texts if t]
    assert [s.start for s in res.segments] == sorted(s.start for s in res.segments)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_stream_audio_matches_load_audio(tmp_path, rate):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(rate * 7)).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(str(path), x, rate, subtype="FLOAT")
    streamed = np.concatenate(list(stream_audio(path, block_seconds=2.0)))
    whole = load_audio(path)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    if rate == SAMPLE_RATE:
        np.testing.assert_array_equal(streamed, whole)
    else:  # same signal, both resampled with soxr (HQ vs VHQ): close, not equal
        assert np.corrcoef(streamed[:n], whole[:n])[0, 1] > 0.99


@pytest.fixture(scope="module")
def transcriber():
    model, tok, _ = load_model(default_model_path())
    return Transcriber(
        model, tok, DecodingOptions(word_timestamps=True), max_segment_seconds=5.0
    )


def test_long_file_is_cut_and_stitched_with_global_times(tmp_path, transcriber):
    rows = clip_rows()
    # a quiet room between the clips (digital zeros never occur in recordings)
    gap = (
        3e-4 * np.random.default_rng(2).standard_normal(int(GAP * SAMPLE_RATE))
    ).astype(np.float32)
    clips = [load_audio(p) for p, _ in rows]
    starts, parts, t = [], [], 0.0
    for c in clips:
        starts.append(t)
        parts += [c, gap]
        t += (len(c) + len(gap)) / SAMPLE_RATE
    path = tmp_path / "long.flac"
    sf.write(str(path), np.concatenate(parts), SAMPLE_RATE)
    (res,) = transcriber.transcribe_files([path])
    assert res.error is None and res.duration == pytest.approx(t, abs=0.01)
    assert len(res.segments) >= 3  # 16 s in pieces of <= 5 s
    assert all(s.end - s.start <= 5.0 + 1e-6 for s in res.segments)
    # the same words as transcribing the clips one by one
    singles = " ".join(h.text for h in transcriber.transcribe_waveforms(clips))
    assert score([singles], [res.text]).cer <= 0.15
    # each clip's words carry times inside that clip's span of the long file
    bounds = [*starts, t]
    for w in res.words:
        k = max(i for i, s in enumerate(starts) if s <= w.start)
        assert w.end <= bounds[k + 1] + 0.05, w
    assert res.words == sorted(res.words, key=lambda w: w.start)


@pytest.mark.parametrize("pause", [0.8, 0.36])
def test_pauses_split_real_speech_before_the_length_limit(pause):
    """Two clips cut to their speech, a pause of quiet between them: one cut,
    in the pause (a 0.36 s pause between sentences is cut too)."""
    rows = clip_rows()
    quiet = (
        3e-4 * np.random.default_rng(3).standard_normal(int(pause * SAMPLE_RATE))
    ).astype(np.float32)
    a, b = (load_audio(rows[k][0]) for k in (1, 3))
    a, b = (w[slice(*speech_span(w))] for w in (a, b))
    wav = np.concatenate([a, quiet, b])
    pieces = list(
        split_at_pauses(
            [wav[k : k + 4000] for k in range(0, len(wav), 4000)], max_seconds=30.0
        )
    )
    assert len(pieces) == 2
    cut = pieces[1][0]
    assert len(a) / SAMPLE_RATE < cut < (len(a) + len(quiet)) / SAMPLE_RATE


def test_words_parted_by_a_pause_stay_apart():
    """Real speech: "stop", 0.45 s of quiet, "seven" (an FSDD speaker), read as
    one clip. The bundled model emits no space across the pause; the greedy
    decoder's word pause (0.4 s of blank frames) puts one in."""
    stop = load_audio(next(p for p, t in clip_rows() if t == "stop"))
    seven = load_audio(TEST_DATA / "7_lucas_1.wav")
    stop, seven = (w[slice(*speech_span(w))] for w in (stop, seven))
    quiet = 3e-4 * np.random.default_rng(6).standard_normal(int(0.45 * SAMPLE_RATE))
    wav = np.concatenate([stop, quiet.astype(np.float32), seven])
    model, tok, _ = load_model(default_model_path())
    texts = {
        pause: Transcriber(model, tok, DecodingOptions(pad_ms=200, word_pause=pause))
        .transcribe_waveforms([wav])[0]
        .text
        for pause in (0.4, 0.0)
    }
    assert texts == {0.4: "stop seven", 0.0: "stopseven"}


@pytest.mark.slow
def test_a_one_hour_file(tmp_path, transcriber):
    """One hour: digital silence with the "stop" clip every 10 minutes."""
    stop = load_audio(next(p for p, t in clip_rows() if t == "stop"))
    path = tmp_path / "hour.flac"
    minute = np.zeros(60 * SAMPLE_RATE, dtype=np.float32)
    with sf.SoundFile(str(path), "w", SAMPLE_RATE, 1, format="FLAC") as f:
        for m in range(60):
            if m % 10 == 5:
                f.write(np.concatenate([stop, minute[len(stop) :]]))
            else:
                f.write(minute)
    (res,) = transcriber.transcribe_files([path])
    assert res.error is None and res.duration == pytest.approx(3600, abs=0.01)
    stops = [w for w in res.words if w.word == "stop"]
    assert len(stops) == 6
    for k, w in enumerate(stops):  # global times: minute 5, 15, ..., 55
        assert 300 + 600 * k <= w.start < w.end <= 300 + 600 * k + 1.0
