"""Transcript writers, following openai-whisper's conventions for each format."""

from __future__ import annotations

import json
from pathlib import Path

from asr.transcribe import Transcript

FORMATS = ("txt", "json", "srt", "vtt", "tsv")


def timestamp(seconds: float, always_hours: bool, marker: str) -> str:
    """12.5 -> '00:00:12,500' (SRT: hours always, ',') or '00:12.500' (VTT)."""
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    hours = f"{h:02d}:" if always_hours or h else ""
    return f"{hours}{m:02d}:{s:02d}{marker}{ms:03d}"


def render(t: Transcript, fmt: str, words: bool = False) -> str:
    """The whole file content of transcript ``t`` in format ``fmt``."""
    if fmt == "txt":
        return t.text + "\n"
    if fmt == "json":
        return json.dumps(t.to_dict(words), ensure_ascii=False, indent=2) + "\n"
    if fmt == "srt":
        return "".join(
            f"{k}\n{timestamp(s.start, True, ',')} --> {timestamp(s.end, True, ',')}\n"
            f"{s.text}\n\n"
            for k, s in enumerate(t.segments, 1)
        )
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(
            f"{timestamp(s.start, False, '.')} --> {timestamp(s.end, False, '.')}\n"
            f"{s.text}\n\n"
            for s in t.segments
        )
    if fmt == "tsv":
        return "start\tend\ttext\n" + "".join(
            f"{round(1000 * s.start)}\t{round(1000 * s.end)}\t{s.text}\n"
            for s in t.segments
        )
    raise ValueError(
        f"unknown output format {fmt!r} (one of {', '.join(FORMATS)}, all)"
    )


def write_outputs(
    t: Transcript,
    out_dir: Path,
    formats: list[str],
    words: bool = False,
    taken: set[str] | None = None,
) -> list[Path]:
    """Write ``out_dir/<input stem>.<fmt>`` for each format; returns the paths.

    ``taken``: stems already written in this run; a repeated stem (a/x.wav and
    b/x.wav) gets a suffix (x-1) instead of overwriting the earlier result.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = base = Path(t.path).stem if t.path != "-" else "stdin"
    if taken is not None:
        n = 0
        while stem in taken:
            n += 1
            stem = f"{base}-{n}"
        taken.add(stem)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        path.write_text(render(t, fmt, words), encoding="utf-8")
        paths.append(path)
    return paths
