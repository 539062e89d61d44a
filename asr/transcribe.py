"""Batched inference: waveforms or files -> transcripts (text, segments, words).

Long files are read block by block, cut at pauses into segments of at most
``max_segment_seconds``, decoded in batches and stitched with global times, so
memory stays bounded whatever the file length.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import webrtcvad

from asr.audio.energy import pcm16
from asr.audio.files import (
    SAMPLE_RATE,
    AudioError,
    audio_duration,
    load_audio,
    stream_audio,
)
from asr.audio.padding import pad_edges, pad_samples
from asr.data.batches import evenest_batch, padded_arrays
from asr.data.text import Tokenizer
from asr.decode.decoder import DecodingOptions, Hypothesis, WordTiming, build_decoder

# a long file's pieces wait in a pool of up to this much audio (61 MB), out of
# which the batch of the most even lengths is decoded first: onnxruntime computes
# every padded frame. On a 60-minute recording of LibriSpeech utterances, the
# padded audio was 97% speech (60 s batches), against 87% when each 480 s of
# pieces was sorted on its own into 120 s batches
POOL_SECONDS = 960.0
# pieces of a long file cut ahead of the model, by a background thread
READ_AHEAD = 8
# a long file is cut in every pause of at least this many seconds: 0.3 s against
# 0.5 s, on recordings of held-out utterances joined by quiet, fewer sentences
# share a piece and run together (BENCHMARKS.md, "Long recordings")
MIN_PAUSE = 0.3

if TYPE_CHECKING:
    from asr.model.acoustic import ASRModel
    from asr.model.exported import ExportedModel


@dataclass
class Segment:
    start: float
    end: float
    text: str
    alternatives: list[dict] = field(default_factory=list)  # n-best: text, score

    def to_dict(self) -> dict:
        d = {"start": self.start, "end": self.end, "text": self.text}
        if self.alternatives:
            d["alternatives"] = self.alternatives
        return d


@dataclass
class Transcript:
    path: str
    duration: float = 0.0
    text: str = ""
    segments: list[Segment] = field(default_factory=list)
    words: list[WordTiming] = field(default_factory=list)
    error: str | None = None

    def to_dict(self, words: bool) -> dict:
        d = {
            "text": self.text,
            "duration": round(self.duration, 3),
            "segments": [s.to_dict() for s in self.segments],
        }
        if words:
            d["words"] = [vars(w) for w in self.words]
        return d


class Transcriber:
    """Model + decoder + batching policy. ``transcribe_files`` is the entry point."""

    def __init__(
        self,
        model: ASRModel | ExportedModel,
        tokenizer: Tokenizer,
        options: DecodingOptions | None = None,
        batch_seconds: float = 60.0,
        max_segment_seconds: float = 30.0,
        audio_filter: Callable[[str, np.ndarray], np.ndarray] | None = None,
    ):
        """``audio_filter(name, wav)``: what the model reads of each file's (or
        long file's piece's) 16 kHz audio; e.g. a speaker's equalisation."""
        self.model, self.tokenizer = model, tokenizer
        self.audio_filter = audio_filter
        self.options = options or DecodingOptions()
        self.decoder = build_decoder(self.options, tokenizer, model.frame_seconds)
        self.batch_seconds, self.max_segment_seconds = (
            batch_seconds,
            max_segment_seconds,
        )
        self.frame_seconds = model.frame_seconds

    def decode_batch(self, wavs, wav_lens) -> list[Hypothesis]:
        """wavs: shape = (B, S) zero-padded 16 kHz, wav_lens (B,) (numpy arrays,
        or CPU tensors) -> B hypotheses. The model runs through its ``infer``:
        an ONNX export needs no torch."""
        wavs = np.asarray(wavs, dtype=np.float32)
        wav_lens = np.asarray(wav_lens, dtype=np.int64)
        log_probs, out_lens = self.model.infer(wavs, wav_lens)
        hyps = []
        for best, *others in self.decoder.decode(log_probs, out_lens):
            best.alternatives = others
            hyps.append(best)
        if self.options.word_timestamps:
            self._time_words(hyps, log_probs, out_lens, wavs, wav_lens)
        return hyps

    def _time_words(self, hyps, log_probs, out_lens, wavs, wav_lens) -> None:
        # lazily, for start-up: forced alignment needs torch(audio), plain
        # transcription does not
        from asr.decode.alignment import align_words

        for hyp, lp, n, wav, s in zip(hyps, log_probs, out_lens, wavs, wav_lens):
            hyp.words = align_words(
                lp[:n], hyp.text, self.tokenizer, self.frame_seconds, wav=wav[:s]
            )

    def transcribe_waveforms(self, waveforms: Sequence[np.ndarray]) -> list[Hypothesis]:
        """Decode waveforms in batches of similar length; results in input order.

        With ``options.pad_ms``, a waveform whose speech comes closer than that
        to an edge is padded there first (``pad_edges``); word times are moved
        back onto the original waveform."""
        pad = pad_samples(self.options.pad_ms)
        padded_inputs = [pad_edges(w, pad) for w in waveforms]
        inputs = [w for w, _ in padded_inputs]
        results: list[Hypothesis | None] = [None] * len(waveforms)
        for batch, padded, lens in padded_arrays(inputs, self.batch_seconds):
            for i, hyp in zip(batch, self.decode_batch(padded, lens)):
                results[i] = hyp
        for hyp, wav, (_, before) in zip(results, waveforms, padded_inputs):
            if before:
                _shift_words(hyp.words, -before / SAMPLE_RATE, len(wav) / SAMPLE_RATE)
        return results  # type: ignore[return-value]

    def transcribe_files(
        self, paths: Iterable[str | Path], files_per_chunk: int = 64
    ) -> Iterator[Transcript]:
        """One Transcript per path, in order; unreadable files carry ``error``."""
        chunk: list[str] = []
        for path in paths:
            path = str(path)
            duration = audio_duration(path)
            if duration is not None and duration > self.max_segment_seconds:
                yield from self._flush(chunk)
                chunk = []
                yield self.transcribe_long(path)
                continue
            chunk.append(path)
            if len(chunk) == files_per_chunk:
                yield from self._flush(chunk)
                chunk = []
        yield from self._flush(chunk)

    def _flush(self, paths: list[str]) -> Iterator[Transcript]:
        results, wavs = [], []
        for p in paths:
            try:
                wavs.append(self._filtered(p, load_audio(p)))
                results.append(Transcript(p, duration=len(wavs[-1]) / SAMPLE_RATE))
            except AudioError as err:
                results.append(Transcript(p, error=str(err)))
        hyps = iter(self.transcribe_waveforms(wavs))
        for res in results:
            if res.error is None:
                _fill(res, [(0.0, res.duration, next(hyps))])
        yield from results

    def transcribe_long(self, path: str) -> Transcript:
        """Stream ``path`` block by block (bounded memory) and transcribe it."""
        return self._transcribe_stream(path, stream_audio(path))

    def transcribe_array(self, name: str, wav: np.ndarray) -> Transcript:
        """Transcribe one in-memory waveform (16 kHz), cutting it if it is long."""
        return self._transcribe_stream(name, [wav])

    def _transcribe_stream(self, name: str, blocks: Iterable[np.ndarray]) -> Transcript:
        """Cut blocks at pauses, decode the pieces in batches, join with times."""
        pieces: list[tuple[float, float, Hypothesis]] = []
        pool: list[tuple[float, np.ndarray]] = []
        budget = max(POOL_SECONDS, 2 * self.batch_seconds) * SAMPLE_RATE
        try:
            cut = split_at_pauses(blocks, self.max_segment_seconds)
            held = 0  # samples in the pool
            for offset, wav in read_ahead(cut, READ_AHEAD):
                pool.append((offset, self._filtered(name, wav)))
                held += len(pool[-1][1])
                while held >= budget:
                    lengths = [len(w) for _, w in pool]
                    batch = set(evenest_batch(lengths, self.batch_seconds))
                    pieces += self._decode_pieces([pool[i] for i in sorted(batch)])
                    pool = [p for i, p in enumerate(pool) if i not in batch]
                    held -= sum(lengths[i] for i in batch)
            pieces += self._decode_pieces(pool)
        except AudioError as err:
            return Transcript(name, error=str(err))
        pieces.sort(key=lambda piece: piece[0])
        res = Transcript(name, duration=pieces[-1][1] if pieces else 0.0)
        _fill(res, pieces)
        return res

    def _filtered(self, name: str, wav: np.ndarray) -> np.ndarray:
        if self.audio_filter is None:
            return wav
        return self.audio_filter(name, wav).astype(np.float32, copy=False)

    def _decode_pieces(self, pending):
        hyps = self.transcribe_waveforms([w for _, w in pending])
        out = []
        for (offset, wav), hyp in zip(pending, hyps):
            _shift_words(hyp.words, offset, math.inf)
            out.append((offset, offset + len(wav) / SAMPLE_RATE, hyp))
        return out


def read_ahead(items: Iterable, size: int) -> Iterator:
    """``items`` as they are, made by a background thread while the caller works
    on the ones before: reading and cutting audio overlaps the model, which
    releases the GIL. Up to ``size`` items wait ready. An exception from ``items``
    is raised here, in its place; the thread stops when the caller does."""
    ready: queue.Queue = queue.Queue(maxsize=size)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as err:  # handed to the caller
            put(err)

    thread = threading.Thread(target=make, daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _shift_words(words: list[WordTiming], by: float, duration: float) -> None:
    """Move word times by ``by`` seconds, kept within [0, duration]."""
    for w in words:
        w.start = round(min(max(w.start + by, 0.0), duration), 3)
        w.end = round(min(max(w.end + by, w.start), duration), 3)


def _fill(res: Transcript, pieces: list[tuple[float, float, Hypothesis]]) -> None:
    """Join decoded pieces (start, end, hypothesis) into the transcript."""
    res.segments = [
        Segment(
            round(s, 3),
            round(e, 3),
            h.text,
            [{"text": a.text, "score": round(a.score, 3)} for a in h.alternatives],
        )
        for s, e, h in pieces
        if h.text
    ]
    res.text = " ".join(s.text for s in res.segments)
    res.words = [w for _, _, h in pieces for w in h.words]


def split_at_pauses(
    blocks: Iterable[np.ndarray],
    max_seconds: float,
    sample_rate: int = SAMPLE_RATE,
    min_pause: float = MIN_PAUSE,
    vad_mode: int = 2,
) -> Iterator[tuple[float, np.ndarray]]:
    """Cut a stream of audio blocks into utterance-like pieces.

    webrtcvad marks each 30 ms frame as speech or not; a piece ends in the middle
    of every pause of at least ``min_pause`` seconds that follows speech, and at
    the quietest 200 ms of its second half if it would exceed ``max_seconds``.
    Yields (start time in seconds, waveform); nothing is dropped.
    """
    vad = webrtcvad.Vad(vad_mode)
    frame = sample_rate * 30 // 1000
    limit = int(max_seconds * sample_rate) // frame * frame
    min_frames = max(1, round(min_pause * 1000 / 30))
    buf = np.zeros(0, dtype=np.float32)
    flags: list[bool] = []  # speech or not, per complete frame of buf
    offset = 0
    for block in blocks:
        buf = np.concatenate([buf, block])
        new = buf[len(flags) * frame : len(buf) // frame * frame]
        pcm = pcm16(new)
        flags += [
            vad.is_speech(pcm[k : k + 2 * frame], sample_rate)
            for k in range(0, len(pcm), 2 * frame)
        ]
        while True:
            cut = _pause_cut(flags, min_frames) * frame
            if len(buf) > limit and not 0 < cut <= limit:  # no pause in time
                quiet = _quietest_point(buf[limit // 2 : limit], sample_rate)
                cut = (limit // 2 + quiet) // frame * frame
            if not cut:
                break
            # a copy: a view would keep all of buf alive while the piece waits
            yield offset / sample_rate, buf[:cut].copy()
            buf, flags, offset = buf[cut:], flags[cut // frame :], offset + cut
    if len(buf):
        yield offset / sample_rate, buf


def _pause_cut(flags: list[bool], min_frames: int) -> int:
    """Frame index in the middle of the first finished pause of at least
    ``min_frames`` that follows speech; 0 if there is none yet."""
    seen_speech, start = False, None
    for k, speech in enumerate(flags):
        if speech:
            if seen_speech and start is not None and k - start >= min_frames:
                return (start + k) // 2
            seen_speech, start = True, None
        elif seen_speech and start is None:
            start = k
    return 0


def _quietest_point(wav: np.ndarray, sample_rate: int) -> int:
    """Centre of the lowest-energy 200 ms window (10 ms steps) of ``wav``."""
    hop, win = sample_rate // 100, sample_rate // 5
    frames = len(wav) // hop
    if frames * hop < win:
        return len(wav)
    energy = np.square(wav[: frames * hop].reshape(frames, hop)).sum(axis=1)
    k = win // hop
    window = np.convolve(energy, np.ones(k), mode="valid")
    return int(window.argmin()) * hop + win // 2
