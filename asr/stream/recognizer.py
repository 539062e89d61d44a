"""Streaming recognition, pure logic (no devices): chunked LC-BLSTM + VAD endpointing.

    rec = StreamingRecognizer(model, tokenizer)
    for block in blocks:                       # any size, any sample rate
        for event in rec.feed(block, rate):    # partial / final hypotheses
            ...
    events = rec.flush()

The encoder runs latency-controlled (Zhang et al., 2016): utterance frames are
processed in chunks of ``chunk_frames``; each layer's forward LSTM carries its state
from chunk to chunk, its backward LSTM restarts on every chunk and reads
``right_frames`` of right context beyond it. Features, subsampling and the forward
state are computed once: nothing is recomputed from the utterance start.

With ``pause_ms`` set, a "pause" event reports the log-probs of the utterance so
far once its tail has been quiet that long, well before the endpointer ends it
(voice commands fire on it when the grammar match is already sure).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

import numpy as np
import soxr
import torch
import webrtcvad

from asr.audio.energy import level_db, pcm16
from asr.audio.files import SAMPLE_RATE
from asr.data.text import PhoneTokenizer, Tokenizer
from asr.decode.decoder import greedy_decode
from asr.features.frontend import level_gains
from asr.model.acoustic import ASRModel, rnn_direction


@dataclass
class StreamingConfig:
    chunk_frames: int = 6  # encoder frames (40 ms each) per chunk: 240 ms
    right_frames: int = 4  # right context of the backward LSTMs: 160 ms
    vad_mode: int = 2  # webrtcvad aggressiveness 0..3
    vad_frame_ms: int = 30
    padding_ms: int = 300  # ring buffer for start/end decisions (endpoint delay)
    start_ratio: float = 0.6  # voiced share of the ring that starts an utterance
    end_ratio: float = 0.8  # unvoiced share of the ring that ends it
    final: str = "full"  # full: re-decode the utterance | chunked: keep chunk output
    # "pause" events: the utterance's tail has been quiet this long (0: none);
    # quiet = the VAD says unvoiced and the frame is pause_db under the loudest
    # frame so far (so that weak speech the VAD misses does not count)
    pause_ms: int = 0
    pause_db: float = 20.0
    pause_vad: bool = True  # False: quiet by level alone (webrtcvad lags ~100 ms)


@dataclass
class Event:
    type: str  # "partial" | "pause" | "final"
    text: str
    start: float  # seconds since the stream began
    end: float
    # pause and final: the utterance's log-probs so far, shape = (T, V)
    log_probs: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {
            "type": self.type,
            "text": self.text,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
        }


GAIN_SECONDS = 0.5  # audio that sets a streamed utterance's level gain


class ChunkedEncoder:
    """LC-BLSTM inference over one utterance fed as 16 kHz audio pieces."""

    def __init__(self, model: ASRModel, chunk_frames: int, right_frames: int):
        self.model, self.chunk, self.right = model.eval(), chunk_frames, right_frames
        self.layers = [
            (rnn_direction(lstm, ""), rnn_direction(lstm, "_reverse"), norm)
            for lstm, norm in zip(model.encoder.layers, model.encoder.norms)
        ]
        self.reset()

    def reset(self) -> None:
        self.wav = np.zeros(0, dtype=np.float32)
        self.feats: list[torch.Tensor] = []  # (n, F) pieces, normalised
        self.n_feats = 0
        self.x: list[torch.Tensor] = []  # subsampled frames, (n, D) pieces
        self.n_x = 0
        self.done = 0  # encoder frames committed
        # per layer: the forward direction's (h, c) for LSTMs, h for GRUs
        self.states: list = [None] * len(self.layers)
        self.log_probs: list[torch.Tensor] = []  # committed (n, V) pieces
        self.gain: torch.Tensor | None = None  # level gain, fixed at the first frames
        self.lookahead = torch.zeros(0)  # tentative log-probs of the right context

    @torch.inference_mode()
    def accept(self, wav: np.ndarray) -> int:
        """Add 16 kHz samples; run every chunk now complete. Returns chunks run."""
        self.wav = np.concatenate([self.wav, wav.astype(np.float32)])
        self._features()
        self._subsample()
        n = 0
        while self.n_x - self.done >= self.chunk + self.right:
            self._run_chunk(self.chunk, self.right)
            n += 1
        return n

    @torch.inference_mode()
    def flush(self) -> None:
        """End of utterance: run what is left with the right context there is."""
        self._features(final=True)
        self._subsample()
        while self.done < self.n_x:
            size = min(self.chunk, self.n_x - self.done)
            self._run_chunk(size, min(self.right, self.n_x - self.done - size))

    def peek(self) -> torch.Tensor:
        """Log-probs of the utterance so far as if it ended now, shape = (T, V);
        the stream's own state is left as it was."""
        saved = {
            k: list(v) if isinstance(v, list) else v
            for k, v in vars(self).items()
            if k not in ("model", "chunk", "right", "layers")
        }
        self.flush()
        log_probs = self.committed()
        vars(self).update(saved)
        return log_probs

    def committed(self) -> torch.Tensor:
        """Log-probs of the committed frames, shape = (T, V)."""
        return torch.cat(self.log_probs) if self.log_probs else torch.zeros(0, 1)

    def _features(self, final: bool = False) -> None:
        cfg = self.model.feature_cfg
        if cfg.level_db is not None and self.gain is None:
            # the level gain comes from the utterance's first GAIN_SECONDS (all of
            # it if shorter) and then stays fixed, so computed frames stay valid
            n = int(GAIN_SECONDS * cfg.sample_rate)
            if len(self.wav) < n and not final:
                return
            head = torch.from_numpy(self.wav[:n])[None]
            self.gain = level_gains(head, torch.tensor([head.shape[1]]), cfg.level_db)
        total = (len(self.wav) - cfg.n_fft) // cfg.hop_length + 1
        if total <= self.n_feats:
            return
        a = self.n_feats * cfg.hop_length
        b = (total - 1) * cfg.hop_length + cfg.n_fft
        piece = torch.from_numpy(self.wav[a:b])[None]
        feats, _ = self.model.frontend(
            piece, torch.tensor([piece.shape[1]]), gains=self.gain
        )
        self.feats.append(feats[0])
        self.n_feats = total

    def _subsample(self) -> None:
        # output frame t sees feature frames 4t .. 4t + 6
        total = max(0, ((self.n_feats - 1) // 2 - 1) // 2)
        if total <= self.n_x:
            return
        feats = torch.cat(self.feats)
        self.feats = [feats]
        piece = feats[4 * self.n_x : 4 * (total - 1) + 7]
        x = self.model.subsampling.conv(piece[None, None])  # (1, C, t, F')
        self.x.append(x[0].permute(1, 0, 2).reshape(x.shape[2], -1))
        self.n_x = total

    def _run_chunk(self, size: int, right: int) -> None:
        x = torch.cat(self.x)
        self.x = [x]
        u = x[self.done : self.done + size + right][None]  # (1, size + right, D)
        for k, (fwd, bwd, norm) in enumerate(self.layers):
            forward, state = fwd(u[:, :size], self.states[k])
            self.states[k] = state  # carried: the state after the chunk proper
            if right:  # the right context runs on, but its state is dropped
                forward = torch.cat([forward, fwd(u[:, size:], state)[0]], dim=1)
            backward = bwd(u.flip(1))[0].flip(1)
            u = norm(torch.cat([forward, backward], dim=-1))
        log_probs = self.model.head(u)[0]
        self.log_probs.append(log_probs[:size])
        self.lookahead = log_probs[size:]
        self.done += size


class Endpointer:
    """webrtcvad with a padding ring buffer (as in Mozilla DeepSpeech's
    mic_vad_streaming): an utterance starts when the voiced share of the ring
    passes ``start_ratio`` and ends when the unvoiced share passes ``end_ratio``."""

    def __init__(self, cfg: StreamingConfig):
        self.cfg, self.vad = cfg, webrtcvad.Vad(cfg.vad_mode)
        self.ring: collections.deque = collections.deque(
            maxlen=max(1, cfg.padding_ms // cfg.vad_frame_ms)
        )
        self.triggered = False
        self.voiced = False  # the last frame's VAD decision

    def step(self, frame: np.ndarray) -> tuple[str, list[np.ndarray]]:
        """One VAD frame -> ("start", ring frames) | ("speech", [frame]) |
        ("end", [frame]) | ("silence", [])."""
        voiced = self.voiced = self.vad.is_speech(pcm16(frame), SAMPLE_RATE)
        self.ring.append((frame, voiced))
        if not self.triggered:
            if sum(v for _, v in self.ring) > self.cfg.start_ratio * self.ring.maxlen:
                self.triggered = True
                frames = [f for f, _ in self.ring]
                self.ring.clear()
                return "start", frames
            return "silence", []
        if sum(not v for _, v in self.ring) > self.cfg.end_ratio * self.ring.maxlen:
            self.triggered = False
            self.ring.clear()
            return "end", [frame]
        return "speech", [frame]


class PauseDetector:
    """Says when an utterance's tail has been quiet for ``pause_ms`` (once per
    pause): every frame since unvoiced by the VAD and ``pause_db`` under the
    utterance's loudest frame so far."""

    def __init__(self, cfg: StreamingConfig):
        self.n_frames = math.ceil(cfg.pause_ms / cfg.vad_frame_ms)
        self.db, self.use_vad = cfg.pause_db, cfg.pause_vad
        self.reset([])

    def reset(self, frames: list[np.ndarray]) -> None:
        """A new utterance, starting with ``frames`` (the endpointer's pre-roll)."""
        self.peak = max((level_db(f) for f in frames), default=-math.inf)
        self.run = 0

    def step(self, frame: np.ndarray, voiced: bool) -> bool:
        db = level_db(frame)
        self.peak = max(self.peak, db)
        quiet = db < self.peak - self.db and not (voiced and self.use_vad)
        self.run = self.run + 1 if quiet else 0
        return self.run == self.n_frames > 0


class StreamingRecognizer:
    """Audio blocks in, partial and final hypotheses out (see the module doc)."""

    def __init__(
        self,
        model: ASRModel,
        tokenizer: Tokenizer,
        cfg: StreamingConfig | None = None,
        decoder=None,
    ):
        # a phone model's greedy output is phones: its partials too go through
        # the (lexicon + LM) decoder
        self.phones = isinstance(tokenizer, PhoneTokenizer)
        if self.phones and decoder is None:
            raise ValueError("a phone model streams with its lexicon decoder")
        self.model, self.tokenizer = model, tokenizer
        self.cfg = cfg or StreamingConfig()
        self.encoder = ChunkedEncoder(
            model, self.cfg.chunk_frames, self.cfg.right_frames
        )
        self.endpointer = Endpointer(self.cfg)
        self.pauses = PauseDetector(self.cfg)
        self.decoder = decoder  # for the final re-decode; None: greedy
        self.frame = SAMPLE_RATE * self.cfg.vad_frame_ms // 1000
        self.pending = np.zeros(0, dtype=np.float32)
        self.samples = 0  # 16 kHz samples consumed by the endpointer
        self.start = 0.0
        self._resampler = None
        self._rate = None

    def feed(self, block: np.ndarray, rate: int = SAMPLE_RATE) -> list[Event]:
        """Take samples (float32, mono, any rate); return the events they cause."""
        block = self._resample(np.asarray(block, dtype=np.float32), rate)
        self.pending = np.concatenate([self.pending, block])
        events = []
        while len(self.pending) >= self.frame:
            frame, self.pending = self.pending[: self.frame], self.pending[self.frame :]
            events += self._step(frame)
        return events

    def flush(self) -> list[Event]:
        """End of stream: finish an utterance in progress."""
        if self.endpointer.triggered:
            self.endpointer.triggered = False
            return [self._final()]
        return []

    def _step(self, frame: np.ndarray) -> list[Event]:
        kind, frames = self.endpointer.step(frame)
        now = self.samples / SAMPLE_RATE
        self.samples += len(frame)
        if kind == "silence":
            return []
        if kind == "start":
            self.encoder.reset()
            self.pauses.reset(frames)
            self.start = now - (len(frames) - 1) * self.cfg.vad_frame_ms / 1000
        chunks = self.encoder.accept(np.concatenate(frames))
        if kind == "end":
            return [self._final()]
        end, events = self.samples / SAMPLE_RATE, []
        if chunks:
            events.append(Event("partial", self._partial_text(), self.start, end))
        if kind == "speech" and self.pauses.step(frame, self.endpointer.voiced):
            lp = self._log_probs(final=False)
            events.append(Event("pause", self._decode_one(lp), self.start, end, lp))
        return events

    def _partial_text(self) -> str:
        lp = torch.cat([self.encoder.committed(), self.encoder.lookahead])
        if self.phones:
            return self._decode_one(lp)
        return greedy_decode(lp[None], torch.tensor([len(lp)]), self.tokenizer)[0].text

    def _final(self) -> Event:
        end = self.samples / SAMPLE_RATE
        lp = self._log_probs(final=True)
        return Event("final", self._decode_one(lp), self.start, end, lp)

    @torch.inference_mode()
    def _log_probs(self, final: bool) -> torch.Tensor:
        """The utterance so far, shape = (T, V): re-decoded whole (final="full")
        or the chunked encoder's, finished (final) or peeked at (a pause)."""
        if self.cfg.final == "full":
            wav = torch.from_numpy(self.encoder.wav)[None]
            lp, n = self.model(wav, torch.tensor([wav.shape[1]]))
            return lp[0, : n[0]]
        if not final:
            return self.encoder.peek()
        self.encoder.flush()
        return self.encoder.committed()

    def _decode_one(self, lp: torch.Tensor) -> str:
        lens = torch.tensor([len(lp)])
        if self.decoder is None:
            return greedy_decode(lp[None], lens, self.tokenizer)[0].text
        return self.decoder.decode(lp[None], lens)[0][0].text

    def _resample(self, block: np.ndarray, rate: int) -> np.ndarray:
        if rate == SAMPLE_RATE:
            return block
        if self._rate != rate:
            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
            self._rate = rate
        return self._resampler.resample_chunk(block)
