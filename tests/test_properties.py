"""Property-based tests (hypothesis) of audio loading, features, decoding, scoring;
and a short fuzz run of the audio loader (scripts/fuzz_audio.py)."""

from __future__ import annotations

import io
import re
import struct

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from asr.audio.files import SAMPLE_RATE, AudioError, load_audio, stream_audio
from asr.data.text import CharTokenizer, normalize_text
from asr.decode.decoder import DecodingOptions, build_decoder, greedy_decode
from asr.decode.metrics import score
from asr.features.frontend import FeatureConfig, LogMel, compute_cmvn_stats

FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
seeds = st.integers(0, 2**32 - 1)

# ------------------------------------------------------------------ audio

SUBTYPES = {
    "WAV": ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"],
    "FLAC": ["PCM_16", "PCM_24"],  # FLAC holds integer samples only
}
RATES = [8000, 11025, 16000, 22050, 44100, 48000, 12345, 7919, 96000]
formats = st.sampled_from([(f, s) for f, subs in SUBTYPES.items() for s in subs])
lengths = st.one_of(st.sampled_from([1, 2, 3, 511]), st.integers(1, 20000))


def _write(path, rng, n, channels, rate, fmt, subtype) -> np.ndarray:
    """Random audio of ``n`` frames written to ``path``; returns what was written."""
    if subtype == "PCM_16":
        data = rng.integers(-32768, 32768, size=(n, channels), dtype=np.int16)
    else:
        data = rng.uniform(-1, 1, size=(n, channels)) * rng.choice([1e-4, 0.5, 1])
    sf.write(str(path), data, rate, format=fmt, subtype=subtype)
    return data


@FAST
@given(
    fmt=formats,
    n=lengths,
    rate=st.sampled_from(RATES),
    channels=st.integers(1, 6),
    seed=seeds,
)
def test_load_audio_any_file_gives_16k_mono_float32(
    tmp_path, fmt, n, rate, channels, seed
):
    path = tmp_path / f"x.{fmt[0].lower()}"
    data = _write(path, np.random.default_rng(seed), n, channels, rate, *fmt)
    wav = load_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1 and wav.flags.c_contiguous
    assert np.isfinite(wav).all()
    # soxr (via librosa, fixed length) gives exactly ceil(n * 16000 / rate) samples
    assert len(wav) == -(-n * SAMPLE_RATE // rate)
    if rate == SAMPLE_RATE and fmt[1] == "PCM_16":  # no resampling: exact values
        expected = (data.astype(np.float32) / 32768).mean(axis=1, dtype=np.float32)
        if channels == 1:
            np.testing.assert_array_equal(wav, data[:, 0].astype(np.float32) / 32768)
        np.testing.assert_allclose(wav, expected, rtol=0, atol=1e-7)


@settings(FAST, max_examples=15)
@given(n=st.integers(1, 30000), rate=st.sampled_from(RATES), seed=seeds)
def test_stream_audio_blocks_concatenate_to_load_audio(tmp_path, n, rate, seed):
    path = tmp_path / "x.flac"
    _write(path, np.random.default_rng(seed), n, 1, rate, "FLAC", "PCM_16")
    whole = load_audio(path)
    blocks = list(stream_audio(path, block_seconds=0.25))
    assert all(b.dtype == np.float32 and b.ndim == 1 and len(b) for b in blocks)
    streamed = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if rate == SAMPLE_RATE:
        np.testing.assert_array_equal(streamed, whole)
    else:  # soxr's streaming resampler rounds (half up) where librosa's fills up
        assert len(streamed) == (2 * n * SAMPLE_RATE + rate) // (2 * rate)
        assert len(whole) - 1 <= len(streamed) <= len(whole)


# --------------------------------------------------------------- features

LOGMEL = LogMel(FeatureConfig())
N_FFT, HOP = 512, 160


def _frames(n: int) -> int:
    return max(1, (n - N_FFT) // HOP + 1)


def _wave(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:
        x = rng.uniform(-1, 1, n)
    elif kind == 1:
        x = np.sin(np.arange(n) * rng.uniform(0.01, 3.0))
    else:
        x = np.zeros(n)
        x[rng.integers(0, n, 3)] = 1.0
    return (x * rng.choice([0.0, 1e-3, 1.0])).astype(np.float32)


wav_lengths = st.one_of(st.integers(1, N_FFT + HOP), st.integers(1, 4000))


@FAST
@given(lens=st.lists(wav_lengths, min_size=1, max_size=4), seed=seeds)
def test_logmel_shapes_and_frame_counts(lens, seed):
    rng = np.random.default_rng(seed)
    batch = torch.zeros(len(lens), max(lens))
    for k, n in enumerate(lens):
        batch[k, :n] = torch.from_numpy(_wave(rng, n))
    with torch.no_grad():
        feats, feat_lens = LOGMEL(batch, torch.tensor(lens))
    assert feats.dtype == torch.float32
    assert feats.shape == (len(lens), _frames(max(lens)), 80)
    assert feat_lens.tolist() == [_frames(n) for n in lens]
    assert torch.isfinite(feats).all()


@FAST
@given(n=wav_lengths, extra=st.integers(1, 3000), seed=seeds)
def test_padding_never_changes_the_frames_of_a_waveform(n, extra, seed):
    rng = np.random.default_rng(seed)
    wav = _wave(rng, n)
    # a waveform shorter than one FFT is zero-padded to it: its one frame is only
    # unchanged by zero padding (what batching does); longer ones by any padding
    pad = rng.uniform(-10, 10, extra) if n >= N_FFT else np.zeros(extra)
    alone = torch.from_numpy(wav)[None]
    padded = torch.from_numpy(np.concatenate([wav, pad]).astype(np.float32))[None]
    with torch.no_grad():
        a, a_lens = LOGMEL(alone, torch.tensor([n]))
        b, b_lens = LOGMEL(padded, torch.tensor([n]))
    t = _frames(n)
    assert a_lens.item() == b_lens.item() == t == a.shape[1]
    torch.testing.assert_close(b[0, :t], a[0], rtol=0, atol=1e-3)


@settings(max_examples=10, deadline=None)
@given(lens=st.lists(st.integers(N_FFT, 3000), min_size=1, max_size=3), seed=seeds)
def test_cmvn_stats_are_the_moments_of_all_frames(lens, seed):
    rng = np.random.default_rng(seed)
    wavs = [rng.uniform(-1, 1, n).astype(np.float32) for n in lens]
    mean, std = compute_cmvn_stats(wavs, FeatureConfig())
    with torch.no_grad():
        frames = torch.cat(
            [
                LOGMEL(torch.from_numpy(w)[None], torch.tensor([len(w)]))[0][0]
                for w in wavs
            ]
        ).double()
    torch.testing.assert_close(mean.double(), frames.mean(0), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(
        std.double(), frames.std(0, unbiased=False), rtol=1e-3, atol=1e-4
    )


# --------------------------------------------------------------- decoding

TOKENIZER = CharTokenizer(["<blank>", " ", "'", "a", "b", "c"])
V = len(TOKENIZER)
_beams: dict[int, object] = {}


def beam_decoder(beam_size: int):
    if beam_size not in _beams:
        options = DecodingOptions(decoder="beam", beam_size=beam_size, nbest=beam_size)
        _beams[beam_size] = build_decoder(options, TOKENIZER)
    return _beams[beam_size]


def reference_best_path(ids: list[int]) -> list[int]:
    """CTC collapse, written plainly: merge runs of equal ids, then drop blanks."""
    out, previous = [], None
    for t in ids:
        if t != previous and t != 0:
            out.append(t)
        previous = t
    return out


@st.composite
def emissions(draw, max_batch=3, max_frames=30):
    """(log_probs (B, T, V), lens (B,), paths): each row peaks on a drawn path."""
    b = draw(st.integers(1, max_batch))
    t = draw(st.integers(1, max_frames))
    lens = [draw(st.integers(1, t)) for _ in range(b)]
    # small vocabulary, blank-heavy: repeats and blank-separated repeats are common
    token = st.sampled_from([0, 0, 1, 2, 3, 3, 4, 5])
    paths = [draw(st.lists(token, min_size=t, max_size=t)) for _ in range(b)]
    margin = draw(st.sampled_from([0.0, 0.5, 5.0]))  # 0: the noise decides
    scale = draw(st.sampled_from([0.3, 1.0, 3.0]))
    rng = np.random.default_rng(draw(seeds))
    logits = torch.from_numpy(rng.normal(size=(b, t, V)) * scale).float()
    logits += margin * torch.nn.functional.one_hot(torch.tensor(paths), V).float()
    return logits.log_softmax(-1), torch.tensor(lens), paths


@settings(max_examples=80, deadline=None)
@given(e=emissions())
def test_greedy_decode_is_the_collapsed_best_path(e):
    log_probs, lens, paths = e
    hyps = greedy_decode(log_probs, lens, TOKENIZER)
    argmax = log_probs.numpy().argmax(-1)
    for k, h in enumerate(hyps):
        n = int(lens[k])
        best = argmax[k, :n].tolist()
        assert h.tokens == reference_best_path(best)
        assert 0 not in h.tokens
        # equal neighbours in the output were split by a blank in the best path
        starts = [j for j, t in enumerate(best) if t and (j == 0 or t != best[j - 1])]
        for i in range(len(h.tokens) - 1):
            if h.tokens[i] == h.tokens[i + 1]:
                assert 0 in best[starts[i] : starts[i + 1]]
        assert h.text == TOKENIZER.decode(h.tokens)
        assert h.score == pytest.approx(float(log_probs[k, :n].max(-1).values.sum()))
        if best == paths[k][:n]:  # the drawn path won every frame (margin 5 mostly)
            assert h.tokens == reference_best_path(paths[k][:n])
        # frames past the length are ignored; each row is decoded on its own
        solo = greedy_decode(log_probs[k : k + 1, :n], lens[k : k + 1], TOKENIZER)
        assert (solo[0].tokens, solo[0].text) == (h.tokens, h.text)


@settings(max_examples=50, deadline=None)
@given(e=emissions(max_batch=2), beam_size=st.integers(1, 4))
def test_lexicon_free_beam_top_hypothesis_is_the_best_path(e, beam_size):
    # without an LM, hypotheses merged by max: the best path is never pruned, and
    # no hypothesis outscores it, so the beam's best is greedy's, at any beam size
    log_probs, lens, _ = e
    greedy = greedy_decode(log_probs, lens, TOKENIZER)
    nbests = beam_decoder(beam_size).decode(log_probs, lens)
    for g, nbest in zip(greedy, nbests):
        assert 1 <= len(nbest) <= beam_size
        assert nbest[0].text == g.text
        assert nbest[0].score == pytest.approx(g.score, abs=1e-3)
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)


# ------------------------------------------------------------ WER and CER

WORDS = ["a", "b", "c", "ab", "the", "cat", "it's", "Ünder", "b2"]
SEPARATORS = [" ", "  ", ", ", " - ", "\t", "! "]


@st.composite
def sentences(draw, min_words=0):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=min_words, max_size=8))
    text = ""
    for w in words:
        text += w.upper() if draw(st.booleans()) else w
        text += draw(st.sampled_from(SEPARATORS))
    return text


texts = st.one_of(sentences(), st.text(max_size=30))


def levenshtein(a, b) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def word_errors(r: str, h: str) -> int:
    return score([r], [h]).utterances[0].word_errors


@settings(max_examples=100, deadline=None)
@given(r=texts, h=texts)
def test_error_counts_are_edit_distances(r, h):
    report = score([r], [h])
    u = report.utterances[0]
    ref, hyp = normalize_text(r), normalize_text(h)
    assert (u.reference, u.hypothesis) == (ref, hyp)
    assert u.n_ref_words == len(ref.split()) and u.n_ref_chars == len(ref)
    assert u.word_errors == levenshtein(ref.split(), hyp.split())
    assert u.char_errors == levenshtein(ref, hyp)
    # hits + substitutions + deletions = reference words; hyp = hits + subs + ins
    assert u.substitutions + u.deletions <= u.n_ref_words
    assert len(hyp.split()) == u.n_ref_words - u.deletions + u.insertions
    assert report.wer >= 0 and report.cer >= 0
    if ref:
        assert report.wer == u.word_errors / u.n_ref_words
        assert report.cer == u.char_errors / u.n_ref_chars
    else:  # nothing to say: every word heard is an insertion
        assert u.insertions == len(hyp.split()) and report.wer == float(bool(hyp))


@settings(max_examples=60, deadline=None)
@given(r=texts)
def test_identity_scores_zero_and_silence_scores_one(r):
    same = score([r], [r])
    assert (same.wer, same.cer) == (0.0, 0.0)
    assume(normalize_text(r))
    silent = score([r], [""])
    assert (silent.wer, silent.cer) == (1.0, 1.0)
    assert silent.utterances[0].deletions == silent.utterances[0].n_ref_words


@settings(max_examples=40, deadline=None)
@given(r=sentences(), h=sentences())
def test_scoring_ignores_case_and_punctuation(r, h):
    # (for ASCII and accented letters; not all Unicode: "ß".upper() is "SS")
    plain = score([r], [h])
    loud = score([r.upper() + "?!"], [f"({h.lower()})"])
    assert (loud.wer, loud.cer) == (plain.wer, plain.cer)
    assert score([r.upper() + "?!"], [r.lower()]).wer == 0.0


@settings(max_examples=60, deadline=None)
@given(a=sentences(1), b=sentences(1), c=sentences(1))
def test_word_errors_are_a_metric(a, b, c):
    assume(normalize_text(a) and normalize_text(b) and normalize_text(c))
    # the S/D/I split is not symmetric (jiwer breaks ties one way), the total is
    assert word_errors(a, b) == word_errors(b, a)
    assert word_errors(a, c) <= word_errors(a, b) + word_errors(b, c)
    na, nb = len(normalize_text(a).split()), len(normalize_text(b).split())
    assert abs(na - nb) <= word_errors(a, b) <= max(na, nb)


@settings(max_examples=40, deadline=None)
@given(pairs=st.lists(st.tuples(texts, texts), min_size=1, max_size=6), data=st.data())
def test_corpus_rates_pool_the_utterance_counts(pairs, data):
    refs, hyps = [p[0] for p in pairs], [p[1] for p in pairs]
    report = score(refs, hyps)
    errors = sum(u.word_errors for u in report.utterances)
    words = sum(u.n_ref_words for u in report.utterances)
    assert report.wer == (errors / words if words else float(errors > 0))
    chars = sum(u.n_ref_chars for u in report.utterances)
    char_errors = sum(u.char_errors for u in report.utterances)
    assert report.cer == (char_errors / chars if chars else float(char_errors > 0))
    order = data.draw(st.permutations(range(len(pairs))))
    shuffled = score([refs[k] for k in order], [hyps[k] for k in order])
    assert (shuffled.wer, shuffled.cer) == (report.wer, report.cer)


# ------------------------------------------------------------------- fuzz


def test_fuzz_audio_loader_short_run():
    from scripts.fuzz_audio import format_failure, format_summary, run_fuzz

    report = run_fuzz(150, seed=20240, workers=1, stream_every=3)
    failures = "\n".join(format_failure(f, report.seed) for f in report.failures)
    assert report.ok, f"{format_summary(report)}\n{failures}"
    assert sum(n for (api, _), n in report.counts.items() if api == "load_audio") == 150
    outcomes = {o for _, o in report.counts}
    assert outcomes == {"ok", "audio_error"}  # the run exercises both


def _reencoded(fmt: str, subtype: str) -> tuple[bytes, np.ndarray]:
    from tests.conftest import CLIPS

    data, rate = sf.read(str(sorted(CLIPS.glob("*.sph"))[0]), dtype="int16")
    buf = io.BytesIO()
    sf.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue(), data


def test_flac_of_unknown_length_loads_and_streams(tmp_path):
    # found by the fuzzer: a FLAC written to a pipe declares 0 (unknown) samples;
    # sf.read tried to allocate 2**63 frames (ValueError escaped load_audio)
    blob, data = _reencoded("FLAC", "PCM_16")
    streaming = bytearray(blob)
    streaming[21] &= 0xF0  # STREAMINFO total samples (36 bits) := 0
    streaming[22:26] = bytes(4)
    path = tmp_path / "pipe.flac"
    path.write_bytes(bytes(streaming))
    expected = data.astype(np.float32) / 32768
    np.testing.assert_array_equal(load_audio(path), expected)
    np.testing.assert_array_equal(np.concatenate(list(stream_audio(path))), expected)


def test_overstated_ogg_length_does_not_stream_forever(tmp_path):
    # found by the fuzzer: sf.blocks trusts the header's frame count and, past the
    # real end, yields its stale buffer again and again
    from scripts.fuzz_audio import _ogg_pages, _ogg_recrc

    blob, data = _reencoded("OGG", "VORBIS")
    ogg = bytearray(blob)
    start, end = _ogg_pages(blob)[-1]
    ogg[start + 6 : start + 14] = struct.pack("<Q", 1 << 40)  # last granule
    _ogg_recrc(ogg, start, end)
    path = tmp_path / "long.ogg"
    path.write_bytes(bytes(ogg))
    assert sf.info(str(path)).frames == 1 << 40
    n = 0
    for block in stream_audio(path, block_seconds=0.5):
        n += len(block)
        assert n < 10 * len(data), "stream_audio does not stop at the real end"
    assert n == len(load_audio(path))
    assert abs(n - len(data)) < 0.1 * SAMPLE_RATE


@pytest.mark.parametrize("rate", [1, 255])
def test_absurd_header_rate_is_an_audio_error(tmp_path, rate):
    # found by the fuzzer: a 1 Hz header made a 100 kB file a 2 GB, minutes-long
    # resampling job (every 16 kHz output sample made from nothing)
    blob, _ = _reencoded("WAV", "PCM_16")
    wav = bytearray(blob)
    wav[24:28] = struct.pack("<I", rate)  # fmt chunk sample rate
    path = tmp_path / "slow.wav"
    path.write_bytes(bytes(wav))
    message = f"{re.escape(str(path))}.* {rate} Hz"
    with pytest.raises(AudioError, match=message):
        load_audio(path)
    with pytest.raises(AudioError, match=message):
        list(stream_audio(path))
