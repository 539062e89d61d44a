"""Audio and video containers read through PyAV (FFmpeg inside its wheel; no system
ffmpeg): M4A/AAC, Opus in WebM, Vorbis in MKV, raw ADTS, the audio of MP4 and AVI
videos, AMR-NB, WMA. Each file is encoded here, with PyAV, from a real AN4 clip."""

from __future__ import annotations

import io
import random
import shutil
import tracemalloc
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from asr.audio.files import (
    SAMPLE_RATE,
    AudioError,
    audio_duration,
    decode_audio_bytes,
    load_audio,
    measure_duration,
    native_blocks,
    stream_audio,
)
from asr.cli.app import main
from tests.conftest import clip_rows

SPEECH, SPEECH_TEXT = clip_rows()[1]  # "enter forty one", 1.7 s at 16 kHz
# a codec's priming and padding (AAC 1024 + up to 1023 samples, MP3 1105, ...)
PADDING_SECONDS = 0.12


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    codec: str
    rate: int
    layout: str = "mono"  # the clip on the first channel, silence on the others
    video: bool = False  # a video stream beside the audio
    options: dict = field(default_factory=dict)
    bit_rate: int | None = None
    narrowband: bool = False  # a speech codec: spectrum kept, waveform not

    def __str__(self) -> str:
        return self.name


FORMATS = [
    Format("m4a-aac", ".m4a", "aac", 16000),
    Format("mp4-aac-stereo-44k", ".mp4", "aac", 44100, layout="stereo"),
    Format("webm-opus-stereo-48k", ".webm", "libopus", 48000, layout="stereo"),
    # FFmpeg's own Vorbis encoder: experimental, stereo only
    Format(
        "mkv-vorbis-stereo-44k",
        ".mkv",
        "vorbis",
        44100,
        layout="stereo",
        options={"strict": "experimental"},
    ),
    Format("adts-aac", ".aac", "aac", 22050),
    Format("mp4-video-aac-48k", ".mp4", "aac", 48000, layout="stereo", video=True),
    Format("avi-video-mp3", ".avi", "libmp3lame", 44100, video=True),
    Format("amr-nb", ".amr", "libopencore_amrnb", 8000, narrowband=True),
    Format("wma", ".wma", "wmav2", 44100, layout="stereo", bit_rate=64000),
    # more channels than AVFrame.data holds: PyAV mishandles such planar frames
    Format(
        "webm-opus-12ch",
        ".webm",
        "libopus",
        48000,
        layout="7.1.4",
        options={"mapping_family": "255"},
        bit_rate=512000,
    ),
]


def speech() -> np.ndarray:
    return load_audio(SPEECH)


def has_encoder(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # UnknownCodecError; its module moved between PyAV versions
        return False
    return True


def encode(path: Path, wav: np.ndarray, fmt: Format) -> Path:
    """Write ``wav`` (16 kHz mono) as ``fmt`` with PyAV's encoders."""
    if not has_encoder(fmt.codec):
        pytest.skip(f"this PyAV build has no {fmt.codec} encoder")
    x = librosa.resample(wav, orig_sr=SAMPLE_RATE, target_sr=fmt.rate)
    channels = [x] + [np.zeros_like(x)] * (n_channels(fmt) - 1)
    with av.open(str(path), "w") as out:
        video = _add_video(out) if fmt.video else None
        audio = out.add_stream(fmt.codec, rate=fmt.rate, options=fmt.options)
        audio.layout = fmt.layout
        if fmt.bit_rate:
            audio.bit_rate = fmt.bit_rate
        interleaved = np.stack(channels, axis=1).reshape(1, -1).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=fmt.layout)
        frame.sample_rate, frame.pts = fmt.rate, 0
        frame.time_base = Fraction(1, fmt.rate)
        _mux(out, audio, [frame])
        if video is not None:
            _mux(out, video, _video_frames(int(len(wav) / SAMPLE_RATE * 10) + 1))
    return path


def n_channels(fmt: Format) -> int:
    return av.AudioLayout(fmt.layout).nb_channels


def _add_video(out):
    video = out.add_stream("mpeg4", rate=10)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    return video


def _video_frames(n: int):
    for i in range(n):
        img = np.full((48, 64, 3), i * 20 % 256, dtype=np.uint8)
        yield av.VideoFrame.from_ndarray(img, format="rgb24")


def _mux(out, stream, frames) -> None:
    for frame in [*frames, None]:  # None flushes the encoder
        for packet in stream.encode(frame):
            out.mux(packet)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """fmt -> the clip encoded as fmt (made once per module)."""
    folder = tmp_path_factory.mktemp("formats")
    cache: dict[str, Path] = {}

    def get(fmt: Format) -> Path:
        if fmt.name not in cache:
            path = folder / f"{fmt.name}{fmt.suffix}"
            cache[fmt.name] = encode(path, speech(), fmt)
        return cache[fmt.name]

    return get


def aligned(wav: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``wav`` shifted onto ``ref`` (codec delay) by cross-correlation, cut to it."""
    corr = scipy.signal.correlate(wav, ref, mode="full", method="fft")
    lag = int(np.argmax(np.abs(corr))) - (len(ref) - 1)
    wav = wav[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), wav])
    n = min(len(wav), len(ref))
    return wav[:n].astype(np.float32)


def logmel_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of log-mel spectrograms below 3.8 kHz (what AMR-NB keeps), each
    signal at unit RMS first (the floor of the log must not see a channel mix)."""

    def logmel(x):
        mel = librosa.feature.melspectrogram(
            y=x / np.sqrt(np.mean(x**2) + 1e-12),
            sr=SAMPLE_RATE,
            n_fft=400,
            hop_length=160,
            n_mels=40,
            fmax=3800,
        )
        return np.log(mel + 1e-6).ravel()

    return float(np.corrcoef(logmel(a), logmel(b))[0, 1])


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_decodes_to_16k_mono_float32_matching_the_source(made, fmt):
    src = speech()
    wav = load_audio(made(fmt))
    assert wav.dtype == np.float32 and wav.ndim == 1 and np.isfinite(wav).all()
    assert abs(len(wav) - len(src)) / SAMPLE_RATE <= PADDING_SECONDS
    same = aligned(wav, src)
    assert len(same) > 0.9 * len(src)
    # lossy codecs give 0.9-1.0 here; other AN4 speech 0.3-0.65, a 0.3 s shift 0.3
    assert logmel_similarity(same, src[: len(same)]) > 0.85
    if not fmt.narrowband:  # channels averaged: (clip + silence...) / n
        gain = same @ src[: len(same)] / (src[: len(same)] @ src[: len(same)])
        assert gain == pytest.approx(1 / n_channels(fmt), rel=0.15)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_bytes_durations_and_blocks_agree_with_the_whole_file(made, fmt):
    path = made(fmt)
    wav = load_audio(path)
    np.testing.assert_array_equal(decode_audio_bytes(path.read_bytes()), wav)
    seconds = len(wav) / SAMPLE_RATE
    assert audio_duration(path) == pytest.approx(seconds, abs=PADDING_SECONDS)
    assert measure_duration(path) == pytest.approx(seconds, abs=PADDING_SECONDS)
    rate, blocks = native_blocks(path, block_seconds=0.25)
    blocks = list(blocks)
    assert rate == fmt.rate
    assert {len(b) for b in blocks[:-1]} == {int(0.25 * rate)}
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(path, rate))
    streamed = np.concatenate(list(stream_audio(path, block_seconds=0.25)))
    assert abs(len(streamed) - len(wav)) <= 2
    n = min(len(streamed), len(wav))
    assert np.corrcoef(streamed[:n], wav[:n])[0, 1] > 0.99


def test_raw_aac_duration_is_counted_not_guessed(tmp_path):
    fmt = Format("adts", ".aac", "aac", 16000, bit_rate=24000)
    path = encode(tmp_path / "long.aac", np.tile(speech(), 8), fmt)
    seconds = len(load_audio(path)) / SAMPLE_RATE
    assert measure_duration(path) == pytest.approx(seconds, abs=1e-3)
    assert audio_duration(path) == pytest.approx(seconds, rel=0.2)  # a bit rate guess


def test_block_reader_memory_stays_bounded(tmp_path):
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(SAMPLE_RATE * 40)).astype(np.float32)
    fmt = Format("long", ".m4a", "aac", 48000, layout="stereo")
    path = encode(tmp_path / "long.m4a", noise, fmt)  # 40 s: 7.7 MB decoded (mono)
    tracemalloc.start()
    try:
        rate, blocks = native_blocks(path, block_seconds=1.0)
        n = sum(len(b) for b in blocks)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == pytest.approx(40 * rate, abs=2048)
    assert peak < 2_000_000  # a few 1 s blocks (192 kB each), not the whole file


def test_cli_transcribes_m4a_and_stdin_like_the_wav_without_system_ffmpeg(
    made, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("PATH", "/nonexistent")  # nothing could find an ffmpeg
    assert shutil.which("ffmpeg") is None
    m4a = made(FORMATS[0])
    wav = tmp_path / "speech.wav"
    sf.write(str(wav), speech(), SAMPLE_RATE)
    assert main(["transcribe", str(wav), str(m4a)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    texts = [line.split("\t")[1] for line in lines]
    assert texts[0] == texts[1] and texts[0].startswith("enter")
    stdin = io.TextIOWrapper(io.BytesIO(m4a.read_bytes()))
    monkeypatch.setattr("sys.stdin", stdin)
    assert main(["transcribe", "-"]) == 0
    assert capsys.readouterr().out.strip() == f"-\t{texts[0]}"


def bad_files(made, folder: Path) -> dict[str, Path]:
    """A video without audio, a truncated m4a, garbage named .m4a."""
    no_audio = folder / "silent-film.mp4"
    with av.open(str(no_audio), "w") as out:
        _mux(out, _add_video(out), _video_frames(10))
    truncated = folder / "truncated.m4a"
    data = made(FORMATS[0]).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end
    garbage = folder / "garbage.m4a"
    garbage.write_bytes(random.Random(0).randbytes(20000))
    return {"no_audio": no_audio, "truncated": truncated, "garbage": garbage}


def test_bad_files_are_one_clear_error_each(made, tmp_path, capsys):
    bad = bad_files(made, tmp_path)
    reasons = {
        "no_audio": r"not a readable audio file \(it has no audio stream: only video",
        "truncated": r"not a readable audio file \(.*FFmpeg: ",
        "garbage": r"not a readable audio file \(.*FFmpeg: ",
    }
    for key, path in bad.items():
        with pytest.raises(AudioError, match=f"^{path}: {reasons[key]}"):
            load_audio(path)
        with pytest.raises(AudioError, match=f"^{path}: "):
            next(native_blocks(path)[1])
        assert audio_duration(path) is None
    good = made(FORMATS[0])
    assert main(["transcribe", str(good), *map(str, bad.values())]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{good}\t")
    for path in bad.values():
        named = [line for line in err.splitlines() if str(path) in line]
        assert len(named) == 1 and "Traceback" not in err


def test_truncated_stream_without_an_index_gives_what_is_there(made, tmp_path):
    data = made(FORMATS[2]).read_bytes()  # Opus in WebM
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    wav = load_audio(cut)
    assert 0.2 * len(speech()) < len(wav) < 0.8 * len(speech())


def test_damaged_packets_become_silence_of_their_length(made, tmp_path):
    path = made(FORMATS[0])
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 600] = random.Random(1).randbytes(600)
    damaged = tmp_path / "damaged.m4a"
    damaged.write_bytes(bytes(data))
    wav = load_audio(damaged)
    assert len(wav) == len(load_audio(path)) and np.isfinite(wav).all()


def test_mutated_files_give_audio_or_one_clear_error(made, tmp_path):
    rng = random.Random(0)
    sources = [made(f).read_bytes() for f in FORMATS[:4]]
    for i in range(40):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            if rng.random() < 0.2:
                data = data[: at + 1]
            else:
                data[at : at + rng.randint(1, 64)] = rng.randbytes(rng.randint(1, 64))
        path = tmp_path / f"mutant{i}.m4a"
        path.write_bytes(bytes(data))
        try:
            wav = load_audio(path)
        except AudioError as err:
            assert str(err).startswith(f"{path}: ") and "\n" not in str(err)
            continue
        assert wav.dtype == np.float32 and np.isfinite(wav).all()
