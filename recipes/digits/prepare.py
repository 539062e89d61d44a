"""Free Spoken Digit Dataset -> train / dev JSONL manifests, one speaker held out.

    python recipes/digits/prepare.py --fsdd ../shared/data/fsdd --out data/digits
    python recipes/digits/prepare.py merge data/digits/train_synth.jsonl \\
        data/digits/train.jsonl data/digits/synth/manifest.jsonl
    python recipes/digits/prepare.py an4-digits data/an4/train.jsonl \\
        --out data/digits/an4_digits
    python recipes/digits/prepare.py edges --fsdd ../shared/data/fsdd

The first form writes ``train.jsonl`` (every recording of the other speakers),
``dev.jsonl`` (every recording of ``--dev-speaker``), ``lexicon.txt`` (the ten
words, for the lexicon beam decoder) and ``synth_texts.txt`` (the ten words and
``--n-strings`` random digit strings, input of scripts/synthesize.py). The
``merge`` form concatenates manifests into one, with absolute audio paths so
that every path stays valid in the new manifest's folder. The ``an4-digits`` form
cuts every digit word out of AN4's connected speech (its speakers saying numbers)
at its force-aligned times, one clip per digit, with ``manifest.jsonl``. The
``edges`` form prints, per speaker, how many clips were cut into the word: their
first or last 10 ms lie within ``CLIPPED_DB`` of their loudest 10 ms.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

import soundfile as sf
import soxr

from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.stream.grammar import DIGIT_WORDS

DIGITS = DIGIT_WORDS  # FSDD file names start with the digit: DIGITS[d]
DEV_SPEAKER = "nicolas"  # the held-out speaker of every digits experiment
_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[a-z]+)_(?P<n>[0-9]+)$")


def read_fsdd(root: Path) -> list[Utterance]:
    """Every ``<digit>_<speaker>_<n>.wav`` under root/recordings (or root)."""
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    utts = []
    for path in sorted(folder.glob("*.wav")):
        m = _NAME.match(path.stem)
        if not m:
            print(f"warning: {path.name}: not <digit>_<speaker>_<n>.wav, skipped")
            continue
        info = sf.info(str(path))
        utts.append(
            Utterance(
                str(path.resolve()),
                info.frames / info.samplerate,
                DIGITS[int(m["digit"])],
                speaker=m["speaker"],
            )
        )
    return utts


def split_speaker(
    utts: list[Utterance], dev_speaker: str
) -> tuple[list[Utterance], list[Utterance]]:
    """(train, dev): dev is every utterance of ``dev_speaker``, train the rest."""
    if dev_speaker not in {u.speaker for u in utts}:
        raise SystemExit(f"error: no recording of speaker {dev_speaker!r} found")
    return (
        [u for u in utts if u.speaker != dev_speaker],
        [u for u in utts if u.speaker == dev_speaker],
    )


def digit_strings(n: int, seed: int, lengths: tuple[int, int] = (2, 4)) -> list[str]:
    """``n`` distinct random strings of 2-4 digit words, e.g. 'three one four'."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        k = rng.randint(*lengths)
        out[" ".join(rng.choice(DIGITS) for _ in range(k))] = None
    return list(out)


def write_lexicon(path: Path) -> None:
    """The ten words spelled in characters: 'word<TAB>w o r d |' per line."""
    path.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in sorted(DIGITS)))


def merge(out: Path, sources: list[Path], rate: int = 0) -> int:
    """Concatenate manifests into ``out`` with absolute audio paths.

    With ``rate``, audio at a higher sample rate is resampled to it (band-limited
    like FSDD's 8 kHz) into ``<out stem>_wav/`` and the copies are listed instead.
    """
    utts = []
    for src in sources:
        for u in read_manifest(src):
            path = Path(u.audio_filepath).resolve()
            if rate and sf.info(str(path)).samplerate > rate:
                path = resample_copy(path, out.parent / f"{out.stem}_wav", rate)
            utts.append(Utterance(str(path), u.duration, u.text, u.speaker))
    write_manifest(out, utts)
    return len(utts)


def resample_copy(path: Path, folder: Path, rate: int) -> Path:
    """``path`` resampled to ``rate`` as folder/<parent>_<stem>.wav (kept if there)."""
    copy = (folder / f"{path.parent.name}_{path.stem}.wav").resolve()
    if not copy.exists():
        wav, orig = sf.read(str(path), dtype="float32")
        folder.mkdir(parents=True, exist_ok=True)
        # soxr directly: what asr.audio.resample uses, without librosa's slow import
        wav = soxr.resample(wav, orig, rate, quality="HQ")
        sf.write(str(copy), wav, rate, subtype="PCM_16")
    return copy


def an4_digits(
    manifest: Path, out: Path, model_path: str | None = None, margin: float = 0.03
) -> list[Utterance]:
    """Every digit word of ``manifest``'s utterances, cut at its force-aligned
    times (``asr.alignment.cut_manifest_words``, ``margin`` seconds each side) into
    ``out/<speaker>_<utterance>_<k>_<word>.wav`` (16 kHz); one Utterance each,
    with the utterance's speaker. ``model_path`` aligns (default: the bundled
    model, which was trained on AN4's training speakers)."""
    from asr.decode.alignment import cut_manifest_words

    utts = read_manifest(manifest)
    clips = cut_manifest_words(utts, set(DIGITS), out, model_path, margin)
    write_manifest(out / "manifest.jsonl", clips)
    return clips


CLIPPED_DB = 20.0  # an edge frame this close to the loudest one: cut into the word


def clipped_edges(utts: list[Utterance]) -> dict[str, tuple[float, float, float]]:
    """speaker -> (share of clips whose first 10 ms frame lies within CLIPPED_DB of
    the clip's loudest, the same for the last frame, mean duration in seconds)."""
    from asr.audio.energy import frame_energy_db
    from asr.audio.files import load_audio

    edges: dict[str, list[tuple[bool, bool, float]]] = {}
    for u in utts:
        db = frame_energy_db(load_audio(u.audio_filepath))
        if len(db) == 0:
            continue
        top = db.max() - CLIPPED_DB
        edges.setdefault(u.speaker or "", []).append(
            (db[0] > top, db[-1] > top, u.duration)
        )
    return {
        spk: tuple(float(sum(col) / len(rows)) for col in zip(*rows))
        for spk, rows in sorted(edges.items())
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        ap = argparse.ArgumentParser(description="concatenate manifests")
        ap.add_argument("out", type=Path)
        ap.add_argument("sources", type=Path, nargs="+")
        ap.add_argument("--rate", type=int, default=0, help="resample down to this")
        args = ap.parse_args(argv[1:])
        n = merge(args.out, args.sources, args.rate)
        print(f"{args.out}: {n} utterances")
        return
    if argv[:1] == ["an4-digits"]:
        ap = argparse.ArgumentParser(description="digit words cut out of AN4")
        ap.add_argument("manifest", type=Path, help="AN4 manifest (recipes/an4)")
        ap.add_argument("--out", type=Path, required=True, help="folder for the clips")
        ap.add_argument("--model", help="aligning checkpoint (default: bundled)")
        args = ap.parse_args(argv[1:])
        clips = an4_digits(args.manifest, args.out, args.model)
        speakers = len({u.speaker for u in clips})
        print(f"{args.out}/manifest.jsonl: {len(clips)} digits, {speakers} speakers")
        return
    if argv[:1] == ["edges"]:
        ap = argparse.ArgumentParser(description="clips cut into the word")
        ap.add_argument("--fsdd", type=Path, required=True, help="FSDD root")
        args = ap.parse_args(argv[1:])
        print(
            f"| speaker | first 10 ms within {CLIPPED_DB:g} dB of the peak | last "
            "10 ms | mean duration |\n|---|---|---|---|"
        )
        for spk, (first, last, dur) in clipped_edges(read_fsdd(args.fsdd)).items():
            print(f"| {spk} | {first:.0%} | {last:.0%} | {dur:.2f} s |")
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fsdd", type=Path, required=True, help="FSDD root")
    ap.add_argument("--out", type=Path, required=True, help="folder for the manifests")
    ap.add_argument("--dev-speaker", default=DEV_SPEAKER)
    ap.add_argument("--n-strings", type=int, default=40, help="synthetic strings")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    train, dev = split_speaker(read_fsdd(args.fsdd), args.dev_speaker)
    write_manifest(args.out / "train.jsonl", train)
    write_manifest(args.out / "dev.jsonl", dev)
    write_lexicon(args.out / "lexicon.txt")
    texts = DIGITS + digit_strings(args.n_strings, args.seed)
    (args.out / "synth_texts.txt").write_text("\n".join(texts) + "\n")
    speakers = sorted({u.speaker for u in train})
    print(
        f"train: {len(train)} utterances ({', '.join(speakers)}), "
        f"dev: {len(dev)} utterances ({args.dev_speaker}); "
        f"{len(texts)} texts for synthesis"
    )


if __name__ == "__main__":
    main()
