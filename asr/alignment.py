"""Word start/end times and confidences from CTC forced alignment.

CTC emits each character as a short spike, and the last spike of a word tends to
come before the word's acoustic end (the blank covers the tail). Word ends are
therefore extended into the following blank frames by ``END_PAD`` seconds, and
starts moved earlier by ``START_PAD``, never past a neighbouring token. Both were
measured on AN4 training clips against silence-based boundaries
(scripts/calibrate_word_times.py) and are checked on held-out speakers by the tests.
"""

from __future__ import annotations

import torch
import torchaudio

from asr.decoding import WordTiming
from asr.text import CharTokenizer

START_PAD = 0.0
END_PAD = 0.08


def align_words(
    log_probs: torch.Tensor,
    text: str,
    tokenizer: CharTokenizer,
    frame_seconds: float,
    offset: float = 0.0,
    start_pad: float = START_PAD,
    end_pad: float = END_PAD,
) -> list[WordTiming]:
    """Force-align ``text`` to one utterance's log-probs and time each word.

    log_probs: shape = (T, V), the valid frames only. A word spans its characters'
    frames (padded as described above); its confidence is the mean posterior of
    the frames its characters occupy.
    """
    targets = tokenizer.encode(text)
    words = tokenizer.decode(targets).split()
    if not words:
        return []
    n_frames = log_probs.shape[0]
    n_repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    if len(targets) + n_repeats > n_frames:  # CTC cannot fit it: too few frames
        return _spread(words, n_frames * frame_seconds, offset)
    labels, scores = torchaudio.functional.forced_align(
        log_probs[None].float().cpu(),
        torch.tensor([targets], dtype=torch.int32),
        blank=0,
    )
    spans = torchaudio.functional.merge_tokens(labels[0], scores[0].exp(), blank=0)
    space = tokenizer.symbols.index(" ") if " " in tokenizer.symbols else -1
    groups = _word_groups(spans, space)
    pads = (round(start_pad / frame_seconds), round(end_pad / frame_seconds))
    timings = []
    for word, group in zip(words, groups):
        first, last = group[0], group[-1]  # indices into spans
        prev_end = spans[first - 1].end if first else 0
        next_start = spans[last + 1].start if last + 1 < len(spans) else n_frames
        start = max(spans[first].start - pads[0], prev_end)
        end = min(spans[last].end + pads[1], next_start)
        chars = spans[first : last + 1]
        timings.append(_timing(word, chars, start, end, frame_seconds, offset))
    return timings


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
    tokenizer: CharTokenizer,
    items,
    start_pad: float = START_PAD,
    end_pad: float = END_PAD,
):
    """Aligned minus silence-based word boundaries, for evaluation and calibration.

    items: (audio path, reference text) pairs; only utterances with as many speech
    islands (asr.metrics.speech_islands) as words count. Returns two arrays of
    seconds: start errors and end errors.
    """
    import numpy as np

    from asr.audio import load_audio
    from asr.metrics import speech_islands

    starts, ends = [], []
    for path, text in items:
        wav = load_audio(path)
        islands = speech_islands(wav)
        if len(islands) != len(text.split()):
            continue
        with torch.no_grad():
            lp, n = model(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
        words = align_words(
            lp[0, : n[0]], text, tokenizer, 0.04, start_pad=start_pad, end_pad=end_pad
        )
        for w, (a, b) in zip(words, islands):
            starts.append(w.start - a)
            ends.append(w.end - b)
    return np.array(starts), np.array(ends)
