"""Word start/end times and confidences from CTC forced alignment.

CTC emits each character as a short spike with blanks around it, so the spikes
say which frames belong to which word only roughly: the first spike may come up
to ~0.2 s before or after the word's onset, and the last one before its end.
Times are therefore set in two steps: the forced alignment of the text gives each
word's characters; then, given the waveform, each boundary moves to the speech
onset/offset (frame energy against the utterance's noise floor) within a window
bounded by the neighbouring words (``snap_to_speech``). Without a waveform, word
ends are extended by ``END_PAD``. scripts/eval_word_times.py measures the result
against boundaries known by construction and against AN4 speech islands.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from asr.audio.energy import ENERGY_HOP, frame_energy_db, speech_islands
from asr.audio.files import SAMPLE_RATE, load_audio
from asr.data.manifest import Utterance
from asr.data.text import Tokenizer
from asr.decode.decoder import WordTiming
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model

START_PAD = 0.0
END_PAD = 0.08


def align_words(
    log_probs,
    text: str,
    tokenizer: Tokenizer,
    frame_seconds: float,
    offset: float = 0.0,
    start_pad: float = START_PAD,
    end_pad: float = END_PAD,
    wav: np.ndarray | None = None,
) -> list[WordTiming]:
    """Force-align ``text`` to one utterance's log-probs and time each word.

    log_probs: shape = (T, V) (a tensor or numpy array), the valid frames only. A
    word spans its characters'
    frames (padded as described above); its confidence is the mean posterior of
    the frames its characters occupy. With the utterance's 16 kHz waveform
    (shape = (S,)), each boundary then moves to the nearby speech onset or offset
    (``snap_to_speech``).
    """
    targets = tokenizer.encode(text)
    words = tokenizer.target_words(text)
    if not words:
        return []
    n_frames = log_probs.shape[0]
    n_repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    if len(targets) + n_repeats > n_frames:  # CTC cannot fit it: too few frames
        return _spread(words, n_frames * frame_seconds, offset)
    labels, scores = torchaudio.functional.forced_align(
        torch.as_tensor(log_probs)[None].float().cpu(),
        torch.tensor([targets], dtype=torch.int32),
        blank=0,
    )
    spans = torchaudio.functional.merge_tokens(labels[0], scores[0].exp(), blank=0)
    space = tokenizer.symbols.index(" ") if " " in tokenizer.symbols else -1
    groups = _word_groups(spans, space)
    pads = (round(start_pad / frame_seconds), round(end_pad / frame_seconds))
    energy = None if wav is None else frame_energy_db(wav)
    timings = []
    for k, (word, group) in enumerate(zip(words, groups)):
        first, last = group[0], group[-1]  # indices into spans
        prev_end = spans[first - 1].end if first else 0
        next_start = spans[last + 1].start if last + 1 < len(spans) else n_frames
        start = max(spans[first].start - pads[0], prev_end)
        end = min(spans[last].end + pads[1], next_start)
        if energy is not None:
            # the neighbouring *words* bound the search: a space token has no
            # acoustic extent and CTC often puts it right against a word
            prev_word = spans[groups[k - 1][-1]].end if k else 0
            next_word = (
                spans[groups[k + 1][0]].start if k + 1 < len(groups) else n_frames
            )
            limits = [prev_word, spans[first].start, spans[last].end, next_word]
            start, end = snap_to_speech(
                energy,
                [x * frame_seconds for x in limits],
                start * frame_seconds,
                end * frame_seconds,
            )
            start, end = start / frame_seconds, end / frame_seconds
        chars = spans[first : last + 1]
        timings.append(_timing(word, chars, start, end, frame_seconds, offset))
    return timings


def cut_words(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    wav: np.ndarray,
    text: str,
    keep: set[str],
    margin: float = 0.03,
) -> list[tuple[str, np.ndarray]]:
    """The words of ``text`` that are in ``keep``, cut out of ``wav`` (its 16 kHz
    waveform, shape = (S,)) at their force-aligned, speech-snapped times with
    ``margin`` seconds kept on each side: (word, samples) in spoken order. A
    phrase of several words in ``keep`` is cut from its first word's start to
    its last word's end; longer phrases first, no word in two cuts.

    model: an acoustic model (waveform batch, lengths) -> (log-probs, lengths),
    as ``asr.checkpoint.load_model`` returns; it should know the speaker's kind
    of speech well enough to align it (a model trained on it is best).
    """
    with torch.inference_mode():
        lp, n = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    frame_seconds = model.frame_seconds
    timings = align_words(lp[0, : int(n[0])], text, tokenizer, frame_seconds, wav=wav)
    words = [t.word for t in timings]
    spans = []  # (first word, last word + 1)
    for n in sorted({len(k.split()) for k in keep}, reverse=True):
        for i in range(len(words) - n + 1):
            taken = any(a < i + n and i < b for a, b in spans)
            if not taken and " ".join(words[i : i + n]) in keep:
                spans.append((i, i + n))
    cuts = []
    for i, j in sorted(spans):
        a = max(0, int((timings[i].start - margin) * SAMPLE_RATE))
        b = min(len(wav), int((timings[j - 1].end + margin) * SAMPLE_RATE))
        cuts.append((" ".join(words[i:j]), wav[a:b]))
    return cuts


def has_phrase(text: str, phrases: set[str]) -> bool:
    """Whether one of ``phrases`` (one word or several) occurs in ``text`` as
    whole words."""
    padded = f" {' '.join(text.split())} "
    return any(f" {p} " in padded for p in phrases)


def cut_manifest_words(
    utts: list[Utterance],
    keep: set[str],
    out: Path,
    model_path: str | None = None,
    margin: float = 0.03,
    min_words: int = 1,
) -> list[Utterance]:
    """``cut_words`` over a manifest: every word in ``keep`` of each utterance with
    at least ``min_words`` words, aligned by the model at ``model_path`` (default:
    the bundled one) and written to ``out/<speaker>_<file stem>_<k>_<word>.wav``
    (16 kHz); one Utterance each, with the source's speaker and an absolute path."""
    model, tokenizer, _ = load_model(model_path or default_model_path())
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for u in utts:
        words = u.text.split()
        if len(words) < min_words or not has_phrase(u.text, keep):
            continue
        wav = load_audio(u.audio_filepath)
        pieces = cut_words(model, tokenizer, wav, u.text, keep, margin)
        stem = Path(u.audio_filepath).stem
        for k, (word, samples) in enumerate(pieces):
            path = out / f"{u.speaker}_{stem}_{k}_{word.replace(' ', '_')}.wav"
            sf.write(str(path), samples, SAMPLE_RATE, subtype="PCM_16")
            duration = len(samples) / SAMPLE_RATE
            clips.append(Utterance(str(path), duration, word, u.speaker))
    return clips


def snap_to_speech(
    energy: np.ndarray,
    limits: list[float],
    start: float,
    end: float,
    floor_db: float = 10.0,
    range_db: float = 55.0,
) -> tuple[float, float]:
    """Move a word's start to the speech onset and its end to the offset nearby.

    limits: (previous word's end, first character, last character's end, next
    word's start), in seconds, from the alignment. Speech is energy above both the
    utterance's noise floor (10th percentile) + ``floor_db`` and its peak -
    ``range_db``. The start
    moves back to where the loud stretch around the first character begins (at
    most 0.5 s, never into the previous word), or forward to the next loud
    stretch within 0.25 s; the end likewise, mirrored. A boundary with no quiet
    frame in its window stays where CTC put it.
    """
    loud = energy > max(np.percentile(energy, 10) + floor_db, energy.max() - range_db)
    prev_end, first, last_end, next_start = (int(round(x / ENERGY_HOP)) for x in limits)
    lo = max(prev_end, first - 50, 0)
    onset = _run_edge(
        loud, min(first, len(loud) - 1), lo, min(first + 25, len(loud)), -1
    )
    hi = min(next_start, last_end + 50, len(loud))
    offset = _run_edge(loud, max(last_end - 1, 0), max(last_end - 25, 0), hi, +1)
    if onset is not None:
        start = onset * ENERGY_HOP
    if offset is not None:
        end = (offset + 1) * ENERGY_HOP
    return start, max(end, start + ENERGY_HOP)


def _run_edge(loud: np.ndarray, k: int, lo: int, hi: int, step: int) -> int | None:
    """From frame k, the outer edge of its loud stretch in direction ``step``
    (-1: the stretch's first frame, +1: its last), searching [lo, hi). If k is
    quiet, the nearest loud frame the other way round is the edge. None when the
    stretch reaches the window's end (no silence seen) or nothing is loud."""
    if not lo <= k < hi:
        return None
    if not loud[k]:  # quiet here: the speech is further in (towards the word)
        inward = range(k - step, hi if step < 0 else lo - 1, -step)
        return next((i for i in inward if loud[i]), None)
    while lo <= k + step < hi and loud[k + step]:
        k += step
    return k if lo <= k + step < hi else None


def _word_groups(spans, space: int) -> list[list[int]]:
    """Indices of the consecutive character spans between space tokens."""
    groups, current = [], []
    for k, span in enumerate(spans):
        if span.token == space:
            if current:
                groups.append(current)
            current = []
        else:
            current.append(k)
    if current:
        groups.append(current)
    return groups


def _timing(word, group, start, end, frame_seconds, offset) -> WordTiming:
    n = sum(s.end - s.start for s in group)
    confidence = sum(s.score * (s.end - s.start) for s in group) / max(n, 1)
    return WordTiming(
        word,
        round(offset + start * frame_seconds, 3),
        round(offset + end * frame_seconds, 3),
        round(float(confidence), 4),
    )


def _spread(words: list[str], duration: float, offset: float) -> list[WordTiming]:
    """Even split, confidence 0: for outputs too short to align."""
    step = duration / len(words)
    return [
        WordTiming(
            w, round(offset + k * step, 3), round(offset + (k + 1) * step, 3), 0.0
        )
        for k, w in enumerate(words)
    ]


def word_boundary_errors(
    model,
    tokenizer: Tokenizer,
    items,
    snap: bool = True,
    start_pad: float = START_PAD,
    end_pad: float = END_PAD,
):
    """Aligned minus reference word boundaries, for evaluation and calibration.

    items: (16 kHz waveform, reference text, reference (start, end) per word).
    ``snap``: refine with the waveform as transcription does. Returns two arrays
    of seconds: start errors and end errors.
    """
    starts, ends = [], []
    for wav, text, spans in items:
        with torch.no_grad():
            lp, n = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
        words = align_words(
            lp[0, : n[0]],
            text,
            tokenizer,
            model.frame_seconds,
            start_pad=start_pad,
            end_pad=end_pad,
            wav=wav if snap else None,
        )
        for w, (a, b) in zip(words, spans):
            starts.append(w.start - a)
            ends.append(w.end - b)
    return np.array(starts), np.array(ends)


def island_references(pairs):
    """(path, text) -> (waveform, text, spans) where the signal's speech islands
    (asr.audio.energy.speech_islands) are as many as the words; others are skipped."""
    for path, text in pairs:
        wav = load_audio(path)
        islands = speech_islands(wav)
        if len(islands) == len(text.split()):
            yield wav, text, islands


def concatenated_references(
    clips, n_items: int, words_per_item: int = 3, seed: int = 0
):
    """Known boundaries by construction: trimmed one-word clips (path, word) joined
    with 0.3-0.7 s of quiet-room noise. Yields (waveform, text, spans)."""
    rng, noise = random.Random(seed), np.random.default_rng(seed)

    def quiet(seconds: float) -> np.ndarray:
        return (3e-4 * noise.standard_normal(int(seconds * SAMPLE_RATE))).astype(
            np.float32
        )

    for _ in range(n_items):
        picks = rng.sample(clips, words_per_item)
        parts, spans, t = [quiet(0.3)], [], 0.3
        for path, _word in picks:
            wav = load_audio(path)
            spans.append((t, t + len(wav) / SAMPLE_RATE))
            parts += [wav, quiet(rng.uniform(0.3, 0.7))]
            t = spans[-1][1] + len(parts[-1]) / SAMPLE_RATE
        yield np.concatenate(parts), " ".join(w for _, w in picks), spans
