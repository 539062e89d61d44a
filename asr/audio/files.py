"""Any audio file -> float32 mono waveform at 16 kHz.

soundfile reads WAV, FLAC, OGG, MP3, AIFF and NIST SPHERE; librosa (audioread/ffmpeg)
is the fallback for anything else. This is the only module that reads audio files.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

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
    ".m4a",
    ".aac",
    ".mp4",
    ".webm",
    ".wma",
}


class AudioError(ValueError):
    """A file that cannot be turned into audio; the message names the file."""


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` and return a float32 mono waveform at ``sample_rate``.

    Returns: shape = (n_samples,), values nominally in [-1, 1].
    Raises AudioError (one sentence naming the file) for missing, empty, unreadable
    or sample-less files.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    try:
        data, rate = _read_soundfile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as sf_err:
        data, rate = _read_librosa(path, sf_err)
    return _to_mono_16k(data, rate, sample_rate, str(path))


def decode_audio_bytes(blob: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an in-memory audio file (e.g. a WAV on stdin) like ``load_audio``."""
    if not blob:
        raise AudioError("<stdin>: no audio data received")
    try:
        data, rate = _read_all(io.BytesIO(blob))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"<stdin>: not a readable audio stream ({err})") from None
    return _to_mono_16k(data, rate, sample_rate, "<stdin>")


def audio_duration(path: str | os.PathLike) -> float | None:
    """Duration in seconds from the header, without decoding; None if unknown."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return None
    return info.frames / info.samplerate if info.samplerate else None


MAX_HEADER_FRAMES = 1 << 40  # more is a header of unknown length (FLAC from a pipe)


def measure_duration(path: str | os.PathLike) -> float:
    """Duration in seconds: from the header when it states a plausible length (no
    decoding), else by decoding the file. Raises AudioError like ``load_audio``."""
    try:
        info = sf.info(str(path))
        if 0 < info.frames < MAX_HEADER_FRAMES and info.samplerate >= MIN_SAMPLE_RATE:
            return info.frames / info.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    return len(load_audio(path)) / SAMPLE_RATE


def native_blocks(
    path: str | os.PathLike, block_seconds: float = 10.0
) -> tuple[int, Iterator[np.ndarray]]:
    """(rate, float32 mono blocks at the file's own rate), read front to back.

    Formats that soundfile cannot stream are decoded whole by ``load_audio`` and
    then cut (rate 16 kHz). Memory stays bounded by the block size otherwise.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        wav = load_audio(path)
        step = max(1, int(block_seconds * SAMPLE_RATE))
        return SAMPLE_RATE, (wav[k : k + step] for k in range(0, len(wav), step))
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
    """High-quality band-limited resampling (soxr, via librosa). shape = (S,)."""
    if orig_rate == new_rate:
        return wav
    import librosa  # imported lazily: it is slow to import and rarely needed

    return librosa.resample(
        wav, orig_sr=orig_rate, target_sr=new_rate, res_type="soxr_hq"
    ).astype(np.float32)


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


def _read_librosa(path: Path, sf_err: Exception) -> tuple[np.ndarray, int]:
    import librosa  # imported lazily: it is slow to import and rarely needed

    try:
        with warnings.catch_warnings():  # librosa warns that soundfile failed: known
            warnings.simplefilter("ignore")
            data, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception as err:  # audioread raises many unrelated types
        hint = ""
        if path.suffix.lower() in {".m4a", ".aac", ".mp4", ".wma", ".webm"}:
            hint = "; install ffmpeg to read this format"
        raise AudioError(
            f"{path}: not a readable audio file ({_first_line(sf_err)}{hint})"
        ) from err
    data = np.atleast_2d(data).T  # librosa gives (C, S); we want (S, C)
    return data.astype(np.float32), int(rate)


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
