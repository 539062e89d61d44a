"""LibriSpeech (the extracted `LibriSpeech/` tree) -> one JSONL manifest per subset.

Layout: <root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac (or any
other audio extension: .mp3, .wav, ... for re-encoded copies), with
<speaker>-<chapter>.trans.txt beside them (lines `ID TRANSCRIPT`). Every subset
present gets <out>/<subset>.jsonl; <out>/train.jsonl joins the training subsets
(those present, or --train). Durations come from the FLAC headers (no decoding),
read by a pool of processes; transcripts are normalised by asr.text.

    python recipes/librispeech/prepare.py --root LibriSpeech --out data/librispeech
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

from tqdm import tqdm

from asr.audio.files import AUDIO_EXTENSIONS, AudioError, measure_duration
from asr.data.manifest import Utterance, write_manifest
from asr.data.text import normalize_text

TRAIN_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500")
SUBSETS = (*TRAIN_SUBSETS, "dev-clean", "dev-other", "test-clean", "test-other")


def read_chapter(trans: Path) -> tuple[list[Utterance], list[str]]:
    """(utterances, warnings) of one chapter's transcript file; runs in a worker."""
    utts, warnings = [], []
    speaker = trans.parent.parent.name
    lines = trans.read_text(encoding="utf-8", errors="replace").splitlines()
    # the corpus ships FLAC, but re-encoded copies (MP3, WAV, ...) keep the names
    audio_files = {
        p.stem: p
        for p in trans.parent.iterdir()
        if p.suffix.lower() in AUDIO_EXTENSIONS
    }
    for n, line in enumerate(lines, 1):
        uid, _, text = line.strip().partition(" ")
        if not uid:
            continue
        audio = audio_files.get(uid, trans.parent / f"{uid}.flac")
        try:
            duration = measure_duration(audio)
        except AudioError as err:
            warnings.append(f"{trans}:{n}: skipped: {err}")
            continue
        utts.append(
            Utterance(str(audio.resolve()), duration, normalize_text(text), speaker)
        )
    return utts, warnings


def prepare_subset(subset_dir: Path, out: Path, pool) -> str:
    """Write ``out`` (atomically) from one subset folder, reading the chapters in
    ``pool`` (a multiprocessing pool, or None: here); returns a summary line."""
    chapters = sorted(subset_dir.glob("*/*/*.trans.txt"))
    stats = {"n": 0, "seconds": 0.0, "skipped": 0, "speakers": set()}
    results = pool.imap(read_chapter, chapters) if pool else map(read_chapter, chapters)
    bar = tqdm(results, total=len(chapters), desc=subset_dir.name, unit="chapter")
    tmp = out.with_name(f".{out.name}.tmp")
    write_manifest(tmp, _collect(bar, stats))
    tmp.replace(out)
    return (
        f"{subset_dir.name}: {stats['n']} utterances, {stats['seconds'] / 3600:.2f} h, "
        f"{len(stats['speakers'])} speakers, {stats['skipped']} skipped -> {out}"
    )


def _collect(results, stats: dict) -> Iterator[Utterance]:
    for utts, warnings in results:
        for w in warnings:
            tqdm.write(f"warning: {w}", file=sys.stderr)
        stats["skipped"] += len(warnings)
        for u in utts:
            stats["n"] += 1
            stats["seconds"] += u.duration
            stats["speakers"].add(u.speaker)
            yield u


def open_pool(jobs: int):
    """A process pool, or a null context (serial) for one job. Opened before any
    progress bar: tqdm starts a thread, and a process that forks should have none."""
    return multiprocessing.Pool(jobs) if jobs > 1 else nullcontext()


def join_manifests(parts: list[Path], out: Path) -> None:
    """Concatenate manifests (absolute paths, so lines stay valid) into ``out``."""
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "wb") as f:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="the LibriSpeech folder")
    ap.add_argument("--out", type=Path, required=True, help="folder for the manifests")
    ap.add_argument(
        "--train",
        nargs="+",
        choices=TRAIN_SUBSETS,
        help="subsets joined into train.jsonl (default: those present)",
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--overwrite", action="store_true", help="redo subsets already prepared"
    )
    args = ap.parse_args(argv)
    present = [s for s in SUBSETS if (args.root / s).is_dir()]
    if not present:
        sys.exit(f"error: {args.root}: no LibriSpeech subset folder ({SUBSETS[0]}, …)")
    missing = sorted(set(args.train or ()) - set(present))
    if missing:
        sys.exit(f"error: {args.root}: --train subset(s) not present: {missing}")
    args.out.mkdir(parents=True, exist_ok=True)
    with open_pool(args.jobs) as pool:
        for subset in present:
            out = args.out / f"{subset}.jsonl"
            if out.is_file() and not args.overwrite:
                print(f"{subset}: {out} exists, kept (--overwrite to redo)")
                continue
            print(prepare_subset(args.root / subset, out, pool))
    train = args.train or [s for s in TRAIN_SUBSETS if s in present]
    if train:
        join_manifests(
            [args.out / f"{s}.jsonl" for s in train], args.out / "train.jsonl"
        )
        print(f"train: {' + '.join(train)} -> {args.out / 'train.jsonl'}")
    else:
        print("no training subset present: train.jsonl not written")


if __name__ == "__main__":
    main()
