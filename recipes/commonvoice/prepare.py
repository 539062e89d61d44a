"""Common Voice (one language folder of a release) -> train / dev / test manifests.

Reads <release>/{train,dev,test}.tsv (tab-separated, unquoted; columns include
client_id, path, sentence) and the MP3s in <release>/clips/. Durations come from
the MP3 headers (decoded only when a header states no length), read by a pool of
processes; the speaker is the client_id. Sentences are normalised by asr.text
(lower case, accents and punctuation stripped, apostrophes kept). A sentence with
letters that have no a-z form (Cyrillic, Greek, CJK, æ, ø, ...) is dropped and
counted: the character tokenizer could not spell it.

    python recipes/commonvoice/prepare.py --release cv-corpus/en --out data/cv
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from asr.audio.files import AudioError, measure_duration
from asr.data.manifest import Utterance, write_manifest
from asr.data.text import normalize_text

COLUMNS = ("client_id", "path", "sentence")
CHUNK = 4096  # rows whose clips are measured together


def normalize_sentence(sentence: str) -> tuple[str, str]:
    """(normalised text, "") or ("", the letters outside a-z that rule it out)."""
    decomposed = unicodedata.normalize("NFKD", sentence).casefold()
    foreign = sorted({c for c in decomposed if c.isalpha() and not "a" <= c <= "z"})
    if foreign:
        return "", "".join(foreign)
    return normalize_text(sentence), ""


def clip_duration(path: str) -> tuple[float, str]:
    """(seconds, "") or (0, why the clip cannot be used); runs in a worker."""
    try:
        return measure_duration(path), ""
    except AudioError as err:
        return 0.0, str(err)


def read_rows(tsv: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a Common Voice TSV; quotes are ordinary characters."""
    with open(tsv, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"error: {tsv}: no column(s) {', '.join(missing)}")
        for row in reader:
            yield reader.line_num, row


@dataclass
class SplitStats:
    """Counts for one split's summary line."""

    n: int = 0
    seconds: float = 0.0
    speakers: set = field(default_factory=set)
    bad_rows: int = 0  # no path or no sentence
    bad_audio: int = 0  # missing or unreadable clip
    empty: int = 0  # nothing left after normalisation
    n_foreign: int = 0  # letters outside a-z
    foreign: Counter = field(default_factory=Counter)  # letter -> sentences

    def summary(self, name: str, out: Path) -> str:
        line = (
            f"{name}: {self.n} utterances, {self.seconds / 3600:.2f} h, "
            f"{len(self.speakers)} speakers -> {out}; skipped: {self.bad_rows} bad "
            f"rows, {self.bad_audio} missing/unreadable clips, {self.empty} empty "
            f"sentences, {self.n_foreign} sentences with letters outside a-z"
        )
        if self.foreign:
            top = "".join(c for c, _ in self.foreign.most_common(20))
            line += f" (most often: {top})"
        if self.n_foreign and not self.n:
            line += (
                "\nnote: the character tokenizer spells a-z only (see "
                "recipes/commonvoice/README.md); this language needs another alphabet"
            )
        return line


def utterances(release: Path, split: str, pool, stats: SplitStats):
    """The usable utterances of ``split``, in TSV order; problems are counted and
    audio problems reported."""
    release = release.resolve()  # manifests hold absolute paths
    tsv = release / f"{split}.tsv"
    rows = read_rows(tsv)
    bar = tqdm(desc=split, unit="clip")
    while chunk := list(islice(rows, CHUNK)):
        kept = []
        for line_num, row in chunk:
            if not all(row.get(c) for c in ("path", "sentence")):
                tqdm.write(
                    f"warning: {tsv}:{line_num}: skipped: no path or sentence",
                    file=sys.stderr,
                )
                stats.bad_rows += 1
                continue
            text, foreign = normalize_sentence(row["sentence"])
            if foreign:
                stats.foreign.update(foreign)
                stats.n_foreign += 1
            elif not text:
                stats.empty += 1
            else:
                kept.append((row, text, str(release / "clips" / row["path"])))
        paths = [p for _, _, p in kept]
        durations = (
            pool.map(clip_duration, paths, 16) if pool else map(clip_duration, paths)
        )
        for (row, text, path), (seconds, err) in zip(kept, durations):
            if err:
                tqdm.write(f"warning: {tsv}: skipped: {err}", file=sys.stderr)
                stats.bad_audio += 1
                continue
            stats.n, stats.seconds = stats.n + 1, stats.seconds + seconds
            stats.speakers.add(row["client_id"])
            speaker = row["client_id"] or None
            yield Utterance(path, seconds, text, speaker)
        bar.update(len(chunk))
    bar.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--release", type=Path, required=True, help="language folder (has clips/)"
    )
    ap.add_argument("--out", type=Path, required=True, help="folder for the manifests")
    ap.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    for split in args.splits:
        if not (args.release / f"{split}.tsv").is_file():
            sys.exit(f"error: {args.release / f'{split}.tsv'}: no such file")
    args.out.mkdir(parents=True, exist_ok=True)
    # the pool first: tqdm starts a thread, and a process that forks should have none
    with multiprocessing.Pool(args.jobs) if args.jobs > 1 else nullcontext() as pool:
        for split in args.splits:
            out, stats = args.out / f"{split}.jsonl", SplitStats()
            tmp = out.with_name(f".{out.name}.tmp")
            write_manifest(tmp, utterances(args.release, split, pool, stats))
            tmp.replace(out)
            print(stats.summary(split, out))


if __name__ == "__main__":
    main()
