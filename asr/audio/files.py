"""Any audio file -> float32 mono waveform at 16 kHz.

soundfile reads WAV, FLAC, OGG, MP3, AIFF and NIST SPHERE; anything else FFmpeg knows
(M4A/AAC, WebM, MKV, MP4/MOV videos, AMR, WMA, ...) goes through PyAV (av_read.py).
With av_read.py, this is the only module that reads audio files.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr.audio.av_read import (
    MediaError,
    UnknownMedia,
    decode_media,
    media_blocks,
    media_duration,
)

SAMPLE_RATE = 16000
MIN_SAMPLE_RATE = 1000  # lower rates hold no speech: the header must be corrupt
# file name endings searched for in folders (asr transcribe DIR, corpus trees)
AUDIO_EXTENSIONS = {
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".sph",
    ".nist",
    ".aif",
    ".aiff",
    ".caf",
    # containers FFmpeg reads (through PyAV); a video's first audio stream is used
    ".m4a",
    ".m4b",
    ".aac",
    ".ac3",
    ".amr",
    ".3gp",
    ".mka",
    ".mkv",
    ".webm",
    ".mp4",
    ".m4v",
    ".mov",
    ".avi",
    ".wma",
    ".wmv",
}
_SF_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError)  # what soundfile raises


class AudioError(ValueError):
    """A file that cannot be turned into audio; the message names the file."""


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` and return a float32 mono waveform at ``sample_rate``.

    Returns: shape = (n_samples,), values nominally in [-1, 1].
    Raises AudioError (one sentence naming the file) for missing, empty, unreadable
    or sample-less files.
    """
    path = _existing_file(path)
    try:
        data, rate = _read_soundfile(path)
    except _SF_ERRORS as sf_err:
        data, rate = _read_media(path, str(path), sf_err)
    return _to_mono_16k(data, rate, sample_rate, str(path))


def decode_audio_bytes(blob: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an in-memory audio file (e.g. an M4A on stdin) like ``load_audio``."""
    if not blob:
        raise AudioError("<stdin>: no audio data received")
    try:
        data, rate = _read_all(io.BytesIO(blob))
    except _SF_ERRORS as sf_err:
        data, rate = _read_media(io.BytesIO(blob), "<stdin>", sf_err)
    return _to_mono_16k(data, rate, sample_rate, "<stdin>")


def audio_duration(path: str | os.PathLike) -> float | None:
    """Duration in seconds from the header, without decoding; None if unknown."""
    try:
        info = sf.info(str(path))
    except _SF_ERRORS:
        return media_duration(path)
    return info.frames / info.samplerate if info.samplerate else None


MAX_HEADER_FRAMES = 1 << 40  # more is a header of unknown length (FLAC from a pipe)


def measure_duration(path: str | os.PathLike) -> float:
    """Duration in seconds: from the header (or the container) when it states a
    plausible length (no decoding), else by decoding the file. Raises AudioError
    like ``load_audio``."""
    try:
        info = sf.info(str(path))
        if 0 < info.frames < MAX_HEADER_FRAMES and info.samplerate >= MIN_SAMPLE_RATE:
            return info.frames / info.samplerate
    except _SF_ERRORS:
        seconds = media_duration(path, exact=True)
        if seconds is not None and 0 < seconds < MAX_HEADER_FRAMES / SAMPLE_RATE:
            return seconds
    return len(load_audio(path)) / SAMPLE_RATE


def native_blocks(
    path: str | os.PathLike, block_seconds: float = 10.0
) -> tuple[int, Iterator[np.ndarray]]:
    """(rate, float32 mono blocks at the file's own rate), read front to back;
    memory stays bounded by the block size. Formats soundfile cannot read are
    decoded by FFmpeg packet by packet as the blocks are consumed."""
    path = _existing_file(path)
    try:
        info = sf.info(str(path))
    except _SF_ERRORS as sf_err:
        rate, blocks = _named(str(path), sf_err, media_blocks, path, block_seconds)
        _check_rate(rate, str(path))
        return rate, _named_blocks(str(path), blocks)
    _check_rate(info.samplerate, str(path))
    blocksize = int(block_seconds * info.samplerate)
    blocksize = max(1, min(blocksize, (1 << 24) // max(1, info.channels)))  # 64 MB
    return info.samplerate, _mono_blocks(path, blocksize)


def _mono_blocks(path: Path, blocksize: int) -> Iterator[np.ndarray]:
    try:
        # not sf.blocks: it trusts the header's frame count, and past the real end
        # of a file that overstates it, yields its stale buffer again and again
        with _SequentialFile(str(path)) as f:
            for block in _read_blocks(f, blocksize):
                mono = block.mean(axis=1)
                yield np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0).astype(
                    np.float32, copy=False
                )
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{path}: the audio stream is corrupt ({err})") from None


def stream_audio(
    path: str | os.PathLike, block_seconds: float = 10.0, sample_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Yield a long file as consecutive float32 mono blocks at ``sample_rate``,
    with memory bounded by the block size whatever the file length."""
    rate, blocks = native_blocks(path, block_seconds)
    if rate == sample_rate:
        yield from (b for b in blocks if len(b))
        return
    stream = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
    for block in blocks:
        out = stream.resample_chunk(block)
        if len(out):
            yield out.astype(np.float32, copy=False)
    tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if len(tail):
        yield tail.astype(np.float32, copy=False)


def resample(wav: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """High-quality band-limited resampling (soxr "HQ"), ceil(S * new / orig)
    samples long (as librosa's soxr_hq gives, without importing librosa).
    shape = (S,)."""
    if orig_rate == new_rate:
        return wav
    out = soxr.resample(wav, orig_rate, new_rate, quality="HQ").astype(np.float32)
    n = int(np.ceil(len(wav) * new_rate / orig_rate))
    return out[:n] if len(out) >= n else np.pad(out, (0, n - len(out)))


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    return path


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    return _read_all(str(path))


class _SequentialFile(sf.SoundFile):
    """A SoundFile read front to back, whatever frame count its header declares.

    A FLAC written to a pipe declares 0 (unknown) samples, which libsndfile reports
    as 2**63 - 1 frames, and a corrupt header may declare more than the file holds:
    ``sf.read`` would allocate that many frames (ValueError, MemoryError), and the
    seek soundfile makes after each read fails past the real end.
    """

    def seekable(self) -> bool:
        return False


def _read_blocks(f: sf.SoundFile, blocksize: int) -> Iterator[np.ndarray]:
    """Consecutive reads of up to ``blocksize`` frames, (S, C), to the real end."""
    while True:
        block = f.read(blocksize, dtype="float32", always_2d=True)
        if len(block):
            yield block
        if len(block) < blocksize:
            return


def _read_all(file) -> tuple[np.ndarray, int]:
    """Every frame of ``file`` (a path or file object). shape = (S, C)."""
    with _SequentialFile(file) as f:
        block = max(1, (1 << 20) // max(1, f.channels))  # 4 MB per read
        parts = list(_read_blocks(f, block))
        if len(parts) == 1:
            return parts[0], f.samplerate
        data = np.concatenate(parts) if parts else np.zeros((0, f.channels))
        return data, f.samplerate


def _read_media(source, name: str, sf_err: Exception) -> tuple[np.ndarray, int]:
    """What soundfile could not read, through FFmpeg: (mono (S,), rate)."""
    return _named(name, sf_err, decode_media, source)


def _named(name: str, sf_err: Exception, read, *args):
    """``read(*args)`` with FFmpeg's failures as AudioError naming ``name``."""
    try:
        return read(*args)
    except UnknownMedia as err:
        reason = _first_line(sf_err).rstrip(".")
        raise AudioError(
            f"{name}: not a readable audio file (soundfile: {reason}; {err})"
        ) from None
    except MediaError as err:
        raise AudioError(f"{name}: {err}") from None


def _named_blocks(name: str, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """Blocks decoded by FFmpeg; a failure while decoding is an AudioError."""
    try:
        yield from blocks
    except MediaError as err:
        raise AudioError(f"{name}: {err}") from None


def _to_mono_16k(data: np.ndarray, rate: int, sample_rate: int, name: str):
    if data.size == 0:
        raise AudioError(f"{name}: the file contains no audio samples")
    _check_rate(rate, name)
    wav = data.mean(axis=1) if data.ndim == 2 else data
    wav = np.nan_to_num(wav.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.ascontiguousarray(resample(wav, rate, sample_rate), dtype=np.float32)


def _check_rate(rate: int, name: str) -> None:
    """Refuse an absurd rate: resampling 1 Hz audio to 16 kHz would be a bomb."""
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(
            f"{name}: the header's sample rate of {rate} Hz is implausible "
            "(the file is probably corrupt)"
        )


def _first_line(err: Exception) -> str:
    """The library's reason, without its own "Error opening '<path>': " prefix."""
    text = str(err).strip()
    if not text:
        return type(err).__name__
    return re.sub(r"^Error opening .*?: ", "", text.splitlines()[0])
