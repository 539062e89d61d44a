"""Kaldi data directories (``wav.scp``, ``text``, ``utt2spk``, optional
``segments``) -> utterances for a JSONL manifest.

A ``wav.scp`` line is ``<recording-id> <path>`` or ``<recording-id> <command> |``
(a pipe such as ``sph2pipe -f wav x.sph |``). Commands are not run unless the
caller allows it (``run_pipes``): they are programs named in a file, so running
them is the user's decision. Their output, and every ``segments`` cut, is written
as a 16-bit WAV into ``audio_out``, since a manifest line names one whole file.
Transcripts are normalised by ``asr.text.normalize_text``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from asr.audio.files import (
    SAMPLE_RATE,
    AudioError,
    decode_audio_bytes,
    load_audio,
    measure_duration,
)
from asr.data.manifest import Utterance
from asr.data.text import normalize_text


class KaldiDirError(ValueError):
    """A Kaldi data directory that cannot be used at all; names the file."""


@dataclass
class KaldiImport:
    """What an import produced: the utterances, and one line per skipped item."""

    utts: list[Utterance] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def read_table(path: Path) -> dict[str, str]:
    """A Kaldi table (``<key> <value...>`` per line; tab or spaces) as a dict."""
    table = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.strip().replace("\t", " ").partition(" ")
        if key:
            table[key] = value.strip()
    return table


def import_kaldi_dir(
    data_dir: str | Path,
    audio_root: str | Path | None = None,
    audio_out: str | Path | None = None,
    run_pipes: bool = False,
) -> KaldiImport:
    """Read a Kaldi data directory.

    Relative paths in ``wav.scp`` resolve against ``audio_root`` (default: the
    data directory's parent, as in a Kaldi recipe's ``data/<set>`` folders).
    ``audio_out`` receives decoded pipe output and segment cuts; it is required
    only when the directory has either. Utterances without a transcript or audio
    are skipped and reported, never fatal. Paths in the result are absolute."""
    data_dir = Path(data_dir)
    for name in ("wav.scp", "text"):
        if not (data_dir / name).is_file():
            raise KaldiDirError(f"{data_dir}: not a Kaldi data directory (no {name})")
    root = Path(audio_root) if audio_root else data_dir.parent
    scp = read_table(data_dir / "wav.scp")
    texts = read_table(data_dir / "text")
    spk = read_table(data_dir / "utt2spk") if (data_dir / "utt2spk").is_file() else {}
    segments = _read_segments(data_dir / "segments")
    needs_out = segments or any(v.endswith("|") for v in scp.values())
    if needs_out and audio_out is None:
        raise KaldiDirError(
            f"{data_dir}: has segments or piped wav.scp entries: give a folder for "
            "the audio they produce (audio_out / --audio-out)"
        )
    source = _Recordings(scp, root, Path(audio_out) if audio_out else None, run_pipes)
    result = KaldiImport()
    for uid, (rec, start, end) in (
        segments or {u: (u, 0.0, None) for u in scp}
    ).items():
        if uid not in texts:
            result.skipped.append(f"{uid}: no transcript in {data_dir / 'text'}")
            continue
        try:
            path, duration = source.utterance(uid, rec, start, end)
        except (AudioError, KaldiDirError) as err:
            result.skipped.append(f"{uid}: {err}")
            continue
        text = normalize_text(texts[uid])
        result.utts.append(Utterance(str(path.resolve()), duration, text, spk.get(uid)))
    return result


def _read_segments(path: Path) -> dict[str, tuple[str, float, float]]:
    """``segments`` lines ``<utt> <recording> <start> <end>`` (seconds)."""
    if not path.is_file():
        return {}
    out = {}
    for n, (uid, value) in enumerate(read_table(path).items(), 1):
        parts = value.split()
        try:
            rec, start, end = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise KaldiDirError(
                f"{path}:{n}: a segments line is '<utt> <recording> <start> <end>'"
            ) from None
        out[uid] = (rec, start, end)
    return out


class _Recordings:
    """wav.scp's recordings: files read in place, pipes run once (if allowed)
    and kept as WAV, segments cut from the decoded recording."""

    def __init__(self, scp: dict[str, str], root: Path, out: Path | None, pipes: bool):
        self.scp, self.root, self.out, self.pipes = scp, root, out, pipes
        self._cached: tuple[str, object] | None = None  # (recording, waveform)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)

    def utterance(
        self, uid: str, rec: str, start: float, end: float | None
    ) -> tuple[Path, float]:
        """(audio file, duration) of one utterance."""
        if rec not in self.scp:
            raise KaldiDirError(f"recording {rec!r} is not in wav.scp")
        entry = self.scp[rec]
        if end is None and not entry.endswith("|"):
            path = self._path(entry)
            return path, measure_duration(path)
        wav = self._waveform(rec, entry)
        piece = wav[
            int(start * SAMPLE_RATE) : None if end is None else int(end * SAMPLE_RATE)
        ]
        if len(piece) == 0:
            raise KaldiDirError(f"segment {start}-{end} s is outside its recording")
        path = self.out / f"{uid}.wav"
        sf.write(path, piece, SAMPLE_RATE, subtype="PCM_16")
        return path, len(piece) / SAMPLE_RATE

    def _path(self, entry: str) -> Path:
        path = Path(entry)
        return path if path.is_absolute() else self.root / path

    def _waveform(self, rec: str, entry: str):
        if self._cached is None or self._cached[0] != rec:
            self._cached = (rec, self._decode(entry))
        return self._cached[1]

    def _decode(self, entry: str):
        if not entry.endswith("|"):
            return load_audio(self._path(entry))
        command = entry[:-1].strip()
        if not self.pipes:
            raise KaldiDirError(
                f"wav.scp entry is a command ({command!r}), not run: allow commands "
                "(run_pipes / --run-pipes) if you trust this directory"
            )
        done = subprocess.run(command, shell=True, capture_output=True, cwd=self.root)
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            raise KaldiDirError(
                f"command {command!r} failed ({err[-1] if err else done.returncode})"
            )
        return decode_audio_bytes(done.stdout)
