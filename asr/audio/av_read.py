"""Audio from anything FFmpeg reads (M4A/AAC, Opus or Vorbis in WebM/MKV, the audio
of MP4/MOV/MKV/AVI videos, AMR, WMA, ...) through PyAV, whose wheel carries FFmpeg's
libraries: no system FFmpeg is needed.

files.py turns to this when soundfile cannot read a file. The first audio stream is
decoded packet by packet and mixed to mono block by block, so a long video streams
in bounded memory. Messages say what went wrong; files.py names the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import soxr

# a playlist or concat list inside a "media" file may open other local files, never
# a network address
_CONTAINER_OPTIONS = {"protocol_whitelist": "file"}
# undecodable packets are replaced by silence of their length (as ffmpeg skips them)
# until they outnumber the good ones: then the stream is garbage, not damaged
MAX_BAD_PACKETS = 8
_MICROSECONDS = 1_000_000  # FFmpeg's AV_TIME_BASE: container durations' unit
# demuxers of bare codec streams: their "duration" is a guess from the bit rate
RAW_FORMATS = {"aac", "ac3", "eac3", "amr", "amrnb", "amrwb", "mp3", "dts"}
WHOLE_FILE_CHUNK = 1 << 18  # samples per numpy conversion of a whole-file read
# PyAV finds a planar frame's channels by walking AVFrame.extended_data to a NULL,
# which frames of more channels than AVFrame.data holds (8) lack: reading their
# planes reads past the array (a segfault). Such frames are interleaved first.
MAX_PLANAR_CHANNELS = 8

Source = str | os.PathLike | BinaryIO


class MediaError(ValueError):
    """FFmpeg gives no audio for the input; the message says why, without its name."""


class UnknownMedia(MediaError):
    """FFmpeg does not recognise the input at all (or PyAV is not installed)."""


def media_duration(source: Source, exact: bool = False) -> float | None:
    """Seconds of the first audio stream as the container states them (no
    decoding); None if it states none or FFmpeg cannot read the input.

    A raw stream (ADTS AAC, AMR, MP3, AC-3) has no stated length: FFmpeg estimates
    one from the bit rate (5% short for a 10-minute ADTS file). ``exact`` counts
    its decoded samples instead (bounded memory).
    """
    try:
        container, stream, rate = _open_stream(source)
    except MediaError:
        return None
    if not (exact and container.format.name in RAW_FORMATS):
        with container:
            return _stated_seconds(container, stream)
    try:
        items = _decoded(container, stream, rate)
        return sum(_n_samples(item) for item in items) / rate
    except MediaError:
        return None


def decode_media(source: Source) -> tuple[np.ndarray, int]:
    """(mono float32 waveform (S,), its sample rate): the whole first audio stream."""
    container, stream, rate = _open_stream(source)
    items = _decoded(container, stream, rate)
    parts = list(_mono_chunks(items, rate, WHOLE_FILE_CHUNK))
    wav = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return wav, rate


def media_blocks(source: Source, block_seconds: float) -> tuple[int, Iterator]:
    """(rate, consecutive float32 mono blocks of ``block_seconds`` at that rate, the
    last one shorter), decoded as they are consumed: memory stays bounded."""
    container, stream, rate = _open_stream(source)
    size = max(1, int(block_seconds * rate))
    items = _decoded(container, stream, rate)
    return rate, _rechunk(_mono_chunks(items, rate, size), size)


def _open_stream(source: Source):
    """(container, its first audio stream, the stream's sample rate). MediaError
    if FFmpeg cannot open it or it has no audio; the caller closes the container."""
    container = _open(source)
    try:
        stream = _audio_stream(container)
        rate = int(stream.codec_context.sample_rate or 0)
        if rate <= 0:
            raise MediaError("not a readable audio file (its audio states no rate)")
    except MediaError:
        container.close()
        raise
    return container, stream, rate


def _open(source: Source):
    try:
        # imported lazily: FFmpeg's libraries cost start-up time (~60 ms) and most
        # files are read by soundfile without them
        import av
    except ImportError:
        raise UnknownMedia("PyAV is not installed: pip install av") from None
    if isinstance(source, (str, os.PathLike)):
        # absolute, so that FFmpeg never reads "name:..." as a protocol prefix
        source = os.path.abspath(source)
    try:
        try:
            return av.open(source, "r", container_options=_CONTAINER_OPTIONS)
        except UnicodeDecodeError:  # a tag not in UTF-8: PyAV < 19 decodes strictly
            if hasattr(source, "seek"):
                source.seek(0)
            return av.open(
                source,
                "r",
                container_options=_CONTAINER_OPTIONS,
                metadata_errors="replace",
            )
    except (av.error.FFmpegError, OSError) as err:
        raise UnknownMedia(f"FFmpeg: {_reason(err)}") from None


def _audio_stream(container):
    """The first audio stream FFmpeg can decode; MediaError naming what the input
    holds instead."""
    audio = container.streams.audio
    for stream in audio:
        if stream.codec_context is not None:
            return stream
    if audio:
        raise MediaError("not a readable audio file (FFmpeg has no decoder for it)")
    held = [f"{s.type} ({_codec_name(s)})" for s in container.streams]
    what = f"only {', '.join(held)}" if held else "no streams at all"
    raise MediaError(f"not a readable audio file (it has no audio stream: {what})")


def _decoded(container, stream, rate: int) -> Iterator:
    """The stream's decoded frames (av.AudioFrame), packet by packet. A packet
    FFmpeg cannot decode becomes silence of its length (zeros at ``rate``), as
    ffmpeg skips it; closes the container at the end."""
    import av  # imported lazily: see _open (loaded by then)

    n_good = n_bad = 0
    packets = container.demux(stream)  # the stream's packets, then a flush packet
    try:
        while (packet := _next_packet(packets, n_good)) is not None:
            try:
                frames = packet.decode()
            except av.error.FFmpegError as err:
                n_bad += 1
                if n_bad > max(MAX_BAD_PACKETS, n_good):
                    raise _corrupt(err) from None
                yield np.zeros(_packet_samples(packet, rate), dtype=np.float32)
                continue
            n_good += 1
            yield from frames
    finally:
        container.close()


def _next_packet(packets: Iterator, n_good: int):
    """The next packet; None at the end. A demuxing error ends the input there, as
    a truncated file ends (ffmpeg does the same), unless nothing decoded before it."""
    import av  # imported lazily: see _open (loaded by then)

    try:
        return next(packets)
    except StopIteration:
        return None
    except av.error.FFmpegError as err:
        if n_good:
            return None
        raise _corrupt(err) from None


def _corrupt(err: Exception) -> MediaError:
    return MediaError(f"the audio stream is corrupt (FFmpeg: {_reason(err)})")


def _mono_chunks(items: Iterator, rate: int, size: int) -> Iterator[np.ndarray]:
    """Decoded frames (and silences) -> float32 mono arrays of ``size`` samples at
    ``rate`` (shorter where the frame format changes, and at the end). Frames
    gather in FFmpeg's AudioFifo: converting each ~20 ms frame to numpy on its own
    took longer than decoding it."""
    import av  # imported lazily: see _open (loaded by then)

    fifo, kind = None, None
    for item in _interleave_wide(items):
        is_frame = not isinstance(item, np.ndarray)
        if is_frame and not item.samples:
            continue
        if fifo is not None and fifo.samples and (not is_frame or _kind(item) != kind):
            yield _mono(fifo.read(), rate)  # what came before it, in order
        if not is_frame:
            yield item
            continue
        if _kind(item) != kind:
            fifo, kind = av.AudioFifo(), _kind(item)
        item.pts = None  # the fifo insists on gapless timestamps; gaps are harmless
        fifo.write(item)
        while fifo.samples >= size:
            yield _mono(fifo.read(size), rate)
    if fifo is not None and fifo.samples:
        yield _mono(fifo.read(), rate)


def _interleave_wide(items: Iterator) -> Iterator:
    """``items`` with each planar frame of more than 8 channels made packed (one
    plane) by FFmpeg's resampler: see MAX_PLANAR_CHANNELS."""
    import av  # imported lazily: see _open (loaded by then)

    packers: dict[tuple, av.AudioResampler] = {}
    for item in items:
        wide = not isinstance(item, np.ndarray) and item.format.is_planar
        if not (wide and item.layout.nb_channels > MAX_PLANAR_CHANNELS):
            yield item
            continue
        kind = _kind(item)
        if kind not in packers:
            packers[kind] = av.AudioResampler(
                item.format.packed, item.layout, item.sample_rate
            )
        try:
            packed = packers[kind].resample(item)
        except (av.error.FFmpegError, ValueError) as err:
            n, reason = item.layout.nb_channels, _reason(err)
            raise MediaError(
                f"not a readable audio file (its {n} channels: {reason})"
            ) from None
        yield from packed


def _kind(frame) -> tuple:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _mono(frame, rate: int) -> np.ndarray:
    """A frame (C channels) -> float32 mono at ``rate``, channels averaged."""
    try:
        data = frame.to_ndarray()  # planar: (C, S); packed: (1, S * C)
    except ValueError:  # s64: no numpy conversion in PyAV
        name = frame.format.name
        raise MediaError(
            f"not a readable audio file (its sample format {name} is not supported)"
        ) from None
    n_channels = max(1, data.size // max(1, frame.samples))
    if frame.format.is_planar:
        data = data.reshape(n_channels, -1)
    else:
        data = data.reshape(-1, n_channels).T
    data = _to_float(data)
    mono = data[0] if n_channels == 1 else data.mean(axis=0)
    if frame.sample_rate and frame.sample_rate != rate:  # the rate changed mid-stream
        mono = soxr.resample(mono, frame.sample_rate, rate)
    mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
    return mono.astype(np.float32, copy=False)


def _n_samples(item) -> int:
    return len(item) if isinstance(item, np.ndarray) else item.samples


def _to_float(data: np.ndarray) -> np.ndarray:
    """Samples of any FFmpeg sample format as float32, full scale = 1."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if data.dtype.kind == "i":
        return data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    return data.astype(np.float32, copy=False)


def _rechunk(frames: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Frames of any length -> consecutive blocks of ``size`` samples (last shorter)."""
    pending: list[np.ndarray] = []
    n_pending = 0
    for frame in frames:
        if not n_pending and len(frame) == size:  # the usual case: no copy
            yield frame
            continue
        pending.append(frame)
        n_pending += len(frame)
        if n_pending < size:
            continue
        joined = np.concatenate(pending)
        n_full = n_pending - n_pending % size
        yield from (joined[k : k + size] for k in range(0, n_full, size))
        n_pending -= n_full
        pending = [joined[n_full:]] if n_pending else []
    if n_pending:
        yield np.concatenate(pending)


def _stated_seconds(container, stream) -> float | None:
    base = stream.time_base
    if stream.duration and base:
        return stream.duration * base.numerator / base.denominator
    if container.duration and container.duration > 0:
        return container.duration / _MICROSECONDS
    return None


def _packet_samples(packet, rate: int) -> int:
    base = packet.time_base
    if not (packet.duration and base):
        return 0
    return max(0, round(packet.duration * base.numerator / base.denominator * rate))


def _codec_name(stream) -> str:
    context = getattr(stream, "codec_context", None)
    return getattr(context, "name", None) or "unknown codec"


def _reason(err: Exception) -> str:
    """FFmpeg's reason, without PyAV's errno and file name around it."""
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return str(text).strip().splitlines()[0]
