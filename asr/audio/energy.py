"""Frame energies and speech islands: the signal-level view of where speech is
(10 ms frames in dB), shared by edge trimming, word times and their evaluation."""

from __future__ import annotations

import numpy as np

ENERGY_HOP = 0.01  # seconds per energy frame


def level_db(wav: np.ndarray) -> float:
    """The energy of all of ``wav`` in dB, as ``frame_energy_db`` measures a frame."""
    return float(10 * np.log10(np.mean(np.square(wav)) + 1e-10))


def pcm16(wav: np.ndarray) -> bytes:
    """float audio -> 16-bit PCM bytes, as webrtcvad reads them (clipped to +-1)."""
    return (np.clip(wav, -1, 1) * 32767).astype(np.int16).tobytes()


def frame_energy_db(wav: np.ndarray, rate: int = 16000) -> np.ndarray:
    """10 ms frame energies in dB. shape = (S // 160,)."""
    hop = int(rate * ENERGY_HOP)
    frames = wav[: len(wav) // hop * hop].reshape(-1, hop)
    return 10 * np.log10(np.square(frames).mean(axis=1) + 1e-10)


def speech_islands(wav: np.ndarray, rate: int = 16000) -> list[tuple[float, float]]:
    """Word-boundary reference from the signal alone, for timing evaluations.

    Frames (10 ms) more than 30 dB under the loudest are silence; speech islands
    closer than 150 ms merge; islands under 150 ms (clicks, breaths) are dropped.
    Returns (start, end) in seconds.
    """
    db = frame_energy_db(wav, rate)
    loud = (db > db.max() - 30).astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], loud, [0]])))
    spans: list[list[int]] = []
    for a, b in zip(edges[::2], edges[1::2]):
        if spans and a - spans[-1][1] < 15:
            spans[-1][1] = b
        else:
            spans.append([a, b])
    return [(a / 100, b / 100) for a, b in spans if b - a >= 15]
