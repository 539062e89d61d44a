"""JSONL manifests, the speech Dataset, padding collate, duration-bucketed batches."""

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
import torch
import torchaudio

from asr.audio import SAMPLE_RATE, AudioError, load_audio
from asr.augment import (
    AdditiveNoise,
    BandLimit,
    EdgeCrop,
    EdgePad,
    EdgeTrim,
    RandomEQ,
)
from asr.text import CharTokenizer

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


class SpeechDataset(torch.utils.data.Dataset):
    """Item i -> (waveform (S,), token ids (L,), i); unreadable audio -> None.

    Edge trimming, cropping and padding, speed perturbation, additive noise,
    random EQ and band-limiting (in that order) draw from (seed, epoch, i), so a
    resumed run sees exactly the same audio whatever the number of workers.
    """

    def __init__(
        self,
        utts: Sequence[Utterance],
        tokenizer: CharTokenizer,
        speed_factors: Sequence[float] = (),
        seed: int = 0,
        noise: AdditiveNoise | None = None,
        band_limit: BandLimit | None = None,
        edge_trim: EdgeTrim | None = None,
        edge_pad: EdgePad | None = None,
        eq: RandomEQ | None = None,
        edge_crop: EdgeCrop | None = None,
    ):
        # a Manifest stays lazy: one line is parsed per item
        self.utts = utts if isinstance(utts, Manifest) else list(utts)
        self.tokenizer = tokenizer
        self.speed_factors = list(speed_factors)
        self.noise, self.band_limit = noise, band_limit
        self.edge_trim, self.edge_pad = edge_trim, edge_pad
        self.edge_crop = edge_crop
        self.eq = eq
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int):
        utt = self.utts[i]
        try:
            wav = torch.from_numpy(load_audio(utt.audio_filepath))
        except AudioError as err:
            log.warning("skipped utterance: %s", err)
            return None
        rng = random.Random(f"{self.seed}/{self.epoch}/{i}")
        if self.edge_trim is not None:  # first: they are about the recording's edges
            wav = self.edge_trim(wav, rng)
        if self.edge_crop is not None:
            wav = self.edge_crop(wav, rng)
        if self.edge_pad is not None:
            wav = self.edge_pad(wav, rng)
        if self.speed_factors:
            wav = speed_perturb(wav, rng.choice(self.speed_factors))
        if self.noise is not None:
            wav = self.noise(wav, rng)
        if self.eq is not None:  # the microphone colours speech and room alike
            wav = self.eq(wav, rng)
        if self.band_limit is not None:  # last: the channel comes after the room
            wav = self.band_limit(wav, rng)
        return wav, torch.tensor(self.tokenizer.encode(utt.text), dtype=torch.long), i


def speed_perturb(wav: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wav`` ``factor`` times faster (pitch moves too, as in Kaldi)."""
    if factor == 1.0:
        return wav
    # resampling from SR*factor to SR shortens the signal by ``factor``
    orig = int(round(SAMPLE_RATE * factor / 100)) * 100
    return torchaudio.functional.resample(wav, orig, SAMPLE_RATE)


@dataclass
class Batch:
    wavs: torch.Tensor  # (B, S) float32, zero-padded
    wav_lens: torch.Tensor  # (B,)
    targets: torch.Tensor  # (B, L) long, zero-padded
    target_lens: torch.Tensor  # (B,)
    indices: list[int]

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return Batch(
            self.wavs.to(device, non_blocking=nb),
            self.wav_lens.to(device, non_blocking=nb),
            self.targets.to(device, non_blocking=nb),
            self.target_lens.to(device, non_blocking=nb),
            self.indices,
        )

    def pin_memory(self) -> Batch:
        return Batch(
            self.wavs.pin_memory(),
            self.wav_lens.pin_memory(),
            self.targets.pin_memory(),
            self.target_lens.pin_memory(),
            self.indices,
        )


def collate(items: list) -> Batch | None:
    """Pad waveforms and targets of the readable items; None if none is readable."""
    items = [it for it in items if it is not None]
    if not items:
        return None
    wavs, targets, indices = zip(*items)
    return Batch(
        wavs=torch.nn.utils.rnn.pad_sequence(list(wavs), batch_first=True),
        wav_lens=torch.tensor([len(w) for w in wavs]),
        targets=torch.nn.utils.rnn.pad_sequence(list(targets), batch_first=True),
        target_lens=torch.tensor([len(t) for t in targets]),
        indices=list(indices),
    )


class DurationBatchSampler(torch.utils.data.Sampler):
    """Batches of similar duration, capped in total audio seconds and in size.

    Utterances are sorted by duration and cut into batches; each epoch the order
    of batches is shuffled with (seed, epoch), except in the first epoch when
    ``sortagrad`` keeps them short-to-long. ``start_batch`` skips batches already
    trained on when an interrupted epoch resumes.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        max_size: int = 0,
        shuffle: bool = True,
        sortagrad: bool = False,
        seed: int = 0,
    ):
        self.max_seconds, self.max_size = max_seconds, max_size
        self.shuffle, self.sortagrad, self.seed = shuffle, sortagrad, seed
        self.epoch, self.start_batch = 0, 0
        self.batches = self._make_batches(np.asarray(durations, dtype=float))

    def _make_batches(self, durations: np.ndarray) -> list[list[int]]:
        batches, current, seconds = [], [], 0.0
        for i in np.argsort(durations, kind="stable").tolist():
            full = self.max_size and len(current) >= self.max_size
            if current and (seconds + durations[i] > self.max_seconds or full):
                batches.append(current)
                current, seconds = [], 0.0
            current.append(i)
            seconds += durations[i]
        if current:
            batches.append(current)
        return batches

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def epoch_batches(self) -> list[list[int]]:
        order = list(range(len(self.batches)))
        if self.shuffle and not (self.sortagrad and self.epoch == 0):
            random.Random(self.seed * 100003 + self.epoch).shuffle(order)
        return [self.batches[k] for k in order]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches()[self.start_batch :]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches)

    def __len__(self) -> int:
        return self.steps_per_epoch - self.start_batch


class DistributedDurationBatchSampler(DurationBatchSampler):
    """One rank's share of the duration-bucketed batches (DistributedDataParallel).

    Every rank builds the same batches and the same (seed, epoch) order, then rank r
    takes batches r, r + W, r + 2W, ... of it: step s trains on W neighbouring
    batches at once (short-to-long in a ``sortagrad`` first epoch), the shares are
    disjoint and together hold every utterance once an epoch. The largest batches
    are halved until the count is a multiple of W, so every rank takes as many
    steps and none waits alone at the end of an epoch. ``start_batch`` counts this
    rank's steps; with W = 1 this is DurationBatchSampler.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        max_size: int = 0,
        shuffle: bool = True,
        sortagrad: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        super().__init__(durations, max_seconds, max_size, shuffle, sortagrad, seed)
        self.rank, self.world_size = rank, world_size
        self.batches = _split_to_multiple(self.batches, world_size)

    def epoch_batches(self) -> list[list[int]]:
        return super().epoch_batches()[self.rank :: self.world_size]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batches) // self.world_size


def _split_to_multiple(batches: list[list[int]], k: int) -> list[list[int]]:
    """Halve the largest batch (the first of equals) until len(batches) % k == 0;
    when all hold one utterance, merge the two shortest instead."""
    batches = list(batches)
    if sum(map(len, batches)) < k:
        raise ValueError(f"fewer utterances than the {k} processes")
    while len(batches) % k:
        j = max(range(len(batches)), key=lambda n: len(batches[n]))
        if len(batches[j]) == 1:
            for _ in range(len(batches) % k):
                batches[0:2] = [batches[0] + batches[1]]
            break
        half = len(batches[j]) // 2
        batches[j : j + 1] = [batches[j][:half], batches[j][half:]]
    return batches
