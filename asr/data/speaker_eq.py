"""Speaker equalisation: bring each speaker's long-term spectrum to a reference.

A small corpus comes with one microphone and one voice per speaker, and those
colour the whole spectrum by up to 10 dB per band (FSDD's four speakers do). Per
speaker, the mean level of its speech frames in BANDS log-spaced bands (LOW_HZ to
HIGH_HZ) is measured over its clips; a smooth zero-phase filter then moves it to
a reference, the average of a set of speakers. No transcript is needed, so a new
speaker's own unlabelled clips give its filter, as speaker-level CMVN does in
Kaldi's recipes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio.energy import ENERGY_HOP, frame_energy_db
from asr.audio.files import (
    SAMPLE_RATE,
    AudioError,
    audio_duration,
    load_audio,
    stream_audio,
)
from asr.data.manifest import Utterance, sample_indices
from asr.features.wave_augment import spectral_gain

LOW_HZ, HIGH_HZ, BANDS = 100.0, 3800.0, 32  # within telephone audio's band
EDGES_HZ = np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 1)
CENTRES_HZ = np.sqrt(EDGES_HZ[:-1] * EDGES_HZ[1:])
SPEECH_DB = 30.0  # speech frames: within this of the clip's loudest 10 ms frame
SILENT_DB = -90.0  # a clip whose loudest 10 ms frame is quieter has no levels
SMOOTH_BANDS = 5  # the filter's curve is a moving average over this many bands
MAX_DB = 15.0  # the largest gain or cut of the filter
N_FFT = 4096  # 25 ms frames zero-padded: every band holds FFT bins, even at 100 Hz


def band_levels(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
    """Mean level (dB) of each band over the clip's speech frames; None for a
    clip shorter than one frame or without signal."""
    win, hop = int(0.025 * sample_rate), int(ENERGY_HOP * sample_rate)
    if len(wav) < win:
        return None
    energy = frame_energy_db(wav, sample_rate)
    if energy.max() < SILENT_DB:
        return None
    n = 1 + (len(wav) - win) // hop  # frame k starts at energy frame k (n <= len)
    speech = energy[:n] > energy.max() - SPEECH_DB
    starts = np.flatnonzero(speech) * hop
    frames = wav[starts[:, None] + np.arange(win)] * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, n=N_FFT, axis=1)) ** 2
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    band = np.searchsorted(EDGES_HZ, freqs, side="right") - 1
    member = band[:, None] == np.arange(BANDS)  # (bins, BANDS); outside: no band
    mean = power @ member / member.sum(axis=0)
    return (10 * np.log10(mean + 1e-10)).mean(axis=0)


BLOCK_SECONDS = 60.0  # longer files are measured block by block


def file_levels(path: str) -> np.ndarray | None:
    """``band_levels`` of an audio file: a file longer than BLOCK_SECONDS is
    read in blocks of that length (memory bounded) and their levels averaged.
    None for an unreadable file or one without signal."""
    try:
        duration = audio_duration(path)
        if duration is not None and duration <= BLOCK_SECONDS:
            return band_levels(load_audio(path))
        blocks = (band_levels(b) for b in stream_audio(path, BLOCK_SECONDS))
        levels = [lv for lv in blocks if lv is not None]
    except AudioError:
        return None
    return np.mean(levels, axis=0) if levels else None


def speaker_of(utt: Utterance) -> str:
    """The manifest's speaker; an utterance without one is its own speaker."""
    return utt.speaker if utt.speaker is not None else f"<{utt.audio_filepath}>"


def speaker_levels(
    utts: Sequence[Utterance], stats_clips: int = 0, seed: int = 0
) -> tuple[dict[str, np.ndarray], set[int]]:
    """Each speaker's mean band levels over its clips (``stats_clips`` > 0: over
    that many drawn with ``seed``), and the indices of the clips used."""
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(utts):
        by_speaker[speaker_of(u)].append(i)
    levels, used = {}, set()
    for spk, idx in by_speaker.items():
        chosen = [idx[j] for j in sample_indices(len(idx), stats_clips, seed)]
        clip_levels = [file_levels(utts[i].audio_filepath) for i in chosen]
        clip_levels = [lv for lv in clip_levels if lv is not None]
        if clip_levels:
            levels[spk] = np.mean(clip_levels, axis=0)
        used.update(chosen)
    return levels, used


def reference_levels(levels: dict[str, np.ndarray]) -> np.ndarray:
    """The speakers' average spectrum, each speaker weighted alike."""
    if not levels:
        raise ValueError("no speaker with speech to make a reference from")
    return np.mean(list(levels.values()), axis=0)


def filter_gains(
    levels: np.ndarray,
    reference: np.ndarray,
    max_db: float = MAX_DB,
    smooth_bands: int = SMOOTH_BANDS,
) -> np.ndarray:
    """The smooth gain per band (dB) that moves ``levels`` to ``reference``'s
    shape; the mean over the bands is 0 (the level is left to ``level_db``)."""
    diff = np.asarray(reference, dtype=float) - levels
    diff -= diff.mean()
    if smooth_bands < 1 or smooth_bands % 2 == 0:
        raise ValueError(f"smooth_bands must be odd and positive, not {smooth_bands}")
    padded = np.pad(diff, smooth_bands // 2, mode="edge")
    smooth = np.convolve(padded, np.ones(smooth_bands) / smooth_bands, mode="valid")
    return np.clip(smooth, -max_db, max_db)


def speaker_gains(
    levels: dict[str, np.ndarray],
    reference: np.ndarray,
    max_db: float = MAX_DB,
    smooth_bands: int = SMOOTH_BANDS,
) -> dict[str, np.ndarray]:
    """Each measured speaker's filter gains (``filter_gains``)."""
    return {
        spk: filter_gains(lv, reference, max_db, smooth_bands)
        for spk, lv in levels.items()
    }


def clip_gains(
    utts: Sequence[Utterance],
    reference: np.ndarray,
    max_db: float = MAX_DB,
    smooth_bands: int = SMOOTH_BANDS,
) -> dict[str, np.ndarray]:
    """Audio path -> the filter gains of its speaker, measured on all of that
    speaker's clips in ``utts`` (no transcripts needed): how `asr evaluate` and
    `asr transcribe --speaker-eq` equalise their inputs. Clips of a speaker
    without measurable speech are missing (left as they are)."""
    levels, _ = speaker_levels(utts)
    gains = speaker_gains(levels, reference, max_db, smooth_bands)
    return {
        u.audio_filepath: gains[speaker_of(u)] for u in utts if speaker_of(u) in gains
    }


def equalise(wav: np.ndarray, gains_db: np.ndarray) -> np.ndarray:
    """A 16 kHz clip through the filter with ``gains_db`` at the band centres."""
    return np.clip(spectral_gain(wav, CENTRES_HZ, gains_db), -1.0, 1.0)


def as_pcm16(wav: np.ndarray) -> np.ndarray:
    """``wav`` on the 16-bit grid, rounded as libsndfile writes PCM_16: in
    memory, the samples a model trained on `apply`'s files read. Models notice
    the difference in the faint parts: on george's FSDD fold the unrounded
    filter output gave 14.75% WER where his equalised files give 13.00%."""
    q = np.floor(np.clip(wav, -1.0, 1.0) * 32768.0).clip(-32768, 32767)
    return (q / 32768.0).astype(np.float32)


def save_reference(path: str | Path, reference: np.ndarray, n_speakers: int) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "bands_hz": [LOW_HZ, HIGH_HZ, BANDS],
        "n_speakers": n_speakers,
        "levels_db": [round(float(v), 3) for v in reference],
    }
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")


def load_reference(path: str | Path) -> np.ndarray:
    doc = json.loads(Path(path).read_text())
    if doc.get("bands_hz") != [LOW_HZ, HIGH_HZ, BANDS]:
        raise ValueError(f"{path}: bands {doc.get('bands_hz')} are not this version's")
    return np.asarray(doc["levels_db"], dtype=float)


def equalise_manifest(
    utts: Sequence[Utterance],
    reference: np.ndarray,
    out_dir: str | Path,
    stats_clips: int = 0,
    max_db: float = MAX_DB,
    smooth_bands: int = SMOOTH_BANDS,
) -> tuple[list[Utterance], list[Utterance], dict[str, np.ndarray]]:
    """Write every utterance through its speaker's filter into ``out_dir``/wav
    (16 kHz, 16 bit). Returns the new utterances, those of them whose clip no
    speaker's statistics used, and the gains per speaker."""
    levels, used = speaker_levels(utts, stats_clips)
    gains = speaker_gains(levels, reference, max_db, smooth_bands)
    flat = np.zeros(BANDS)
    wav_dir = Path(out_dir) / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    out, unseen, names = [], [], set()
    for i, u in enumerate(utts):
        name = Path(u.audio_filepath).stem  # the utterance id stays the same
        if name in names:  # two sources' clips of one name: told apart by a hash
            name += "-" + hashlib.sha1(u.audio_filepath.encode()).hexdigest()[:12]
        names.add(name)
        path = wav_dir / f"{name}.wav"
        wav = equalise(load_audio(u.audio_filepath), gains.get(speaker_of(u), flat))
        sf.write(path, wav, SAMPLE_RATE, subtype="PCM_16")
        new = Utterance(str(path.resolve()), u.duration, u.text, u.speaker)
        out.append(new)
        if i not in used:
            unseen.append(new)
    return out, unseen, gains


def describe_gains(gains: dict[str, np.ndarray], names: Iterable[str] = ()) -> str:
    """One line per named speaker (all if none named): its gains at 5 bands."""
    picks = np.linspace(0, BANDS - 1, 5).round().astype(int)
    head = " ".join(f"{CENTRES_HZ[p]:7.0f}" for p in picks)
    lines = [f"{'speaker':>20} {head}  (Hz: gain dB)"]
    for spk in list(names) or sorted(gains):
        if spk in gains:
            vals = " ".join(f"{gains[spk][p]:+7.1f}" for p in picks)
            lines.append(f"{spk[:20]:>20} {vals}")
    return "\n".join(lines)
