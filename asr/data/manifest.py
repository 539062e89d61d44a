"""JSONL manifests: the Utterance row, reading (whole, or lazily indexed for
corpora of millions of lines), writing, and speaker splits."""

from __future__ import annotations

import json
import logging
import os
import random
import time
import zipfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Utterance:
    audio_filepath: str
    duration: float
    text: str = ""
    speaker: str | None = None

    @property
    def id(self) -> str:
        return Path(self.audio_filepath).stem


class ManifestError(ValueError):
    """A manifest that cannot be used at all (missing, or no valid line)."""


def read_manifest(path: str | Path) -> list[Utterance]:
    """Read a JSONL manifest; relative audio paths resolve against its folder.

    Bad lines (not JSON, missing keys, bad duration) are reported and skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    utts = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                utts.append(_parse_line(line, path.parent))
            except (ValueError, KeyError, TypeError) as err:
                log.warning("%s:%d: skipped: %s", path, n, err)
    if not utts:
        raise ManifestError(f"{path}: the manifest has no valid utterance")
    return utts


def _check_line(line: str) -> tuple[dict, float]:
    """(the line's JSON object, its duration); raises for a bad line."""
    d = json.loads(line)
    if not isinstance(d, dict):
        raise ValueError("a manifest line must be a JSON object")
    missing = {"audio_filepath", "duration"} - d.keys()
    if missing:
        raise KeyError(f"missing key(s) {sorted(missing)}")
    duration = float(d["duration"])
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {d['duration']!r}")
    return d, duration


def _parse_line(line: str, root: Path) -> Utterance:
    d, duration = _check_line(line)
    audio = Path(d["audio_filepath"])
    return Utterance(
        audio_filepath=str(audio if audio.is_absolute() else root / audio),
        duration=duration,
        text=str(d.get("text", "")),
        speaker=d.get("speaker"),
    )


def write_manifest(path: str | Path, utts: Iterable[Utterance]) -> None:
    """Write utterances as JSONL (the speaker key only when known); ``utts`` may
    be a generator, written as it comes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for u in utts:
            d = {
                "audio_filepath": u.audio_filepath,
                "duration": round(u.duration, 4),
                "text": u.text,
            }
            if u.speaker is not None:
                d["speaker"] = u.speaker
            f.write(json.dumps(d, ensure_ascii=False) + "\n")


class Manifest(Sequence[Utterance]):
    """A JSONL manifest read lazily, for corpora of millions of lines.

    One pass over the file records each valid line's byte offset and duration in
    two numpy arrays (16 bytes a line, no Utterance objects); item ``i`` is parsed
    from its line on demand. Bad lines are reported and skipped as by
    ``read_manifest``. The index is cached next to the manifest
    (``<name>.index.npz``, valid while the file keeps its size and modification
    time) when that folder is writable, so a restart skips the pass.
    """

    def __init__(self, path: str | Path, cache: bool = True):
        self.path = Path(path)
        if not self.path.is_file():
            raise ManifestError(f"{self.path}: no such manifest file")
        index = _load_index(self.path) if cache else None
        if index is None:
            index = _build_index(self.path)
            if cache:
                _save_index(self.path, index)
        elif index[2]:
            log.warning(
                "%s: %d bad line(s) skipped (reported when its index was built)",
                self.path,
                index[2],
            )
        self.offsets, self.durations = index[0], index[1]  # (N,) int64, (N,) float64
        if not len(self.offsets):
            raise ManifestError(f"{self.path}: the manifest has no valid utterance")

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i):  # int -> Utterance; slice -> list[Utterance]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        with open(self.path, "rb") as f:
            f.seek(int(self.offsets[i]))
            line = f.readline().decode("utf-8", errors="replace")
        try:
            return _parse_line(line, self.path.parent)
        except (ValueError, KeyError, TypeError) as err:
            raise ManifestError(
                f"{self.path}: line at byte {self.offsets[i]} no longer parses "
                f"({err}); the file changed after it was indexed"
            ) from None

    def __iter__(self) -> Iterator[Utterance]:
        """All utterances, read front to back (one line in memory at a time)."""
        return (_parse_line(line, self.path.parent) for line in self._lines())

    def texts(self) -> Iterator[str]:
        """The transcripts, read front to back (e.g. to build a tokenizer)."""
        return (str(json.loads(line).get("text", "")) for line in self._lines())

    def _lines(self) -> Iterator[str]:
        chunk = 1 << 16  # offsets become Python ints a chunk at a time
        wanted = (
            o
            for k in range(0, len(self.offsets), chunk)
            for o in self.offsets[k : k + chunk].tolist()
        )
        next_offset, pos = next(wanted, -1), 0
        with open(self.path, "rb") as f:
            for raw in f:
                if pos == next_offset:
                    yield raw.decode("utf-8", errors="replace")
                    next_offset = next(wanted, -1)
                pos += len(raw)


def absolute_paths(utts: list[Utterance]) -> list[Utterance]:
    """The same utterances with absolute audio paths (in place), for manifests
    written to another folder than the one they were read from."""
    for u in utts:
        u.audio_filepath = str(Path(u.audio_filepath).resolve())
    return utts


def split_speakers(
    utts: list[Utterance], n_dev: int, seed: int
) -> tuple[list[Utterance], list[Utterance]]:
    """(train, dev): ``n_dev`` whole speakers, drawn with ``seed``, go to dev."""
    speakers = sorted({u.speaker for u in utts})
    dev = set(random.Random(seed).sample(speakers, n_dev))
    return (
        [u for u in utts if u.speaker not in dev],
        [u for u in utts if u.speaker in dev],
    )


def sample_indices(n: int, k: int, seed: int = 0) -> Sequence[int]:
    """Up to ``k`` of ``range(n)`` drawn with ``seed``, ascending; all if ``k`` is
    0 or at least ``n``. Leaves the global RNG alone."""
    if not k or k >= n:
        return range(n)
    return sorted(random.Random(seed).sample(range(n), k))


_Index = tuple[np.ndarray, np.ndarray, int]  # offsets, durations, bad lines
_INDEX_VERSION = 1


def _build_index(path: Path) -> _Index:
    offsets, durations = array("q"), array("d")  # 8 bytes an entry, no objects
    n_bad, pos, t0 = 0, 0, time.perf_counter()
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if raw.strip():
                try:
                    _, duration = _check_line(raw.decode("utf-8", errors="replace"))
                except (ValueError, KeyError, TypeError) as err:
                    log.warning("%s:%d: skipped: %s", path, n, err)
                    n_bad += 1
                else:
                    offsets.append(pos)
                    durations.append(duration)
            pos += len(raw)
    log.info(
        "%s: indexed %d utterances in %.1f s",
        path,
        len(offsets),
        time.perf_counter() - t0,
    )
    return (
        np.frombuffer(offsets, dtype=np.int64),
        np.frombuffer(durations, dtype=np.float64),
        n_bad,
    )


def index_path(path: Path) -> Path:
    """Where the cached index of manifest ``path`` lives."""
    return path.with_name(path.name + ".index.npz")


def _file_key(path: Path) -> list[int]:
    st = path.stat()
    return [_INDEX_VERSION, st.st_size, st.st_mtime_ns]


def _load_index(path: Path) -> _Index | None:
    try:
        with np.load(index_path(path), allow_pickle=False) as z:
            key = z["key"].tolist()
            if key[:3] != _file_key(path):
                return None
            return z["offsets"], z["durations"], int(key[3])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _save_index(path: Path, index: _Index) -> None:
    target = index_path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                offsets=index[0],
                durations=index[1],
                key=np.array([*_file_key(path), index[2]], dtype=np.int64),
            )
        os.replace(tmp, target)  # atomic: concurrent ranks never see half a file
    except OSError as err:  # a read-only corpus folder: index again next time
        log.info("%s: index not cached (%s)", path, err)
        tmp.unlink(missing_ok=True)
