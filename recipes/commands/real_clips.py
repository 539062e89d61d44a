"""Real human recordings of command words and digits, from Debian packages:
an evaluation set of speakers no model here was trained on.

    python recipes/commands/real_clips.py --out data/realclips   # needs apt-get

What it takes (transcripts come from the packages themselves):

- asterisk-core-sounds-en-wav (+ asterisk-core-sounds-en, the transcript list),
  CC-BY-SA-3.0: Allison Smith's 8 kHz telephone prompts: the digits 0-9 and "oh",
  "no", and every prompt of at most 8 words holding a command word ("left
  bracket", "agent logged off", "call forward on busy", "press 0 for help", ...);
- klettres-data, GPL-2+: "no" by two speakers (US and GB English);
- pocketsphinx-testdata, BSD-2-Clause: "go forward ten meters", one speaker.

No package on PyPI, npm or Debian main was found with isolated human recordings
of up, down, left, right, on or off; left, right, on and off occur here inside
short phrases only. Writes <out>/manifest.jsonl (speaker = package/voice) and
<out>/SOURCES.md; the audio stays in <out>/x/ as extracted.

With --cut-words, each command word inside a phrase (Allison's "left" of "left
bracket", "off" of "agent logged off", ...) is also cut out at its force-aligned
times (asr.decode.alignment, the bundled model's posteriors, boundaries moved to the
speech onsets): <out>/words.jsonl, the audio in <out>/words/. These are words from
connected speech, run into their neighbours, so they are harder than words said
alone; but they are human voices saying the command words.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from asr.data.manifest import Utterance, write_manifest  # noqa: E402
from asr.data.text import normalize_text  # noqa: E402
from asr.stream.grammar import DIGIT_WORDS, Grammar  # noqa: E402

PACKAGES = {
    "asterisk-core-sounds-en-wav": "CC-BY-SA-3.0",
    "asterisk-core-sounds-en": "CC-BY-SA-3.0",
    "klettres-data": "GPL-2+",
    "pocketsphinx-testdata": "BSD-2-Clause",
}
GRAMMAR = Path(__file__).resolve().parents[2] / "examples" / "commands.yaml"
# the demo grammar's command words, without the digit slot's words
COMMAND_WORDS = set(Grammar.load(GRAMMAR).words()) - {*DIGIT_WORDS, "oh"}
ALLISON = "usr/share/asterisk/sounds/en_US_f_Allison"
MAX_PROMPT_WORDS = 8


def spoken(text: str) -> str:
    """A prompt's transcript as the model's text: digits as words, normalised."""
    text = re.sub(r"\d", lambda m: f" {DIGIT_WORDS[int(m.group())]} ", text)
    return normalize_text(text)


def asterisk_prompts(transcripts: str) -> list[tuple[str, str]]:
    """(prompt key, text) of the digits, "oh" and the short prompts holding a
    command word, from core-sounds-en.txt ("key: transcript" lines)."""
    picked = []
    for line in transcripts.splitlines():
        if line.startswith(";") or ":" not in line:
            continue
        key, _, said = (x.strip() for x in line.partition(":"))
        text = spoken(said)
        words = text.split()
        digit = key.startswith("digits/") and (text in DIGIT_WORDS or text == "oh")
        command = 0 < len(words) <= MAX_PROMPT_WORDS and COMMAND_WORDS & set(words)
        if digit or command:
            picked.append((key, text))
    return picked


def fetch(out: Path) -> Path:
    """apt-get download + dpkg-deb -x of the packages into out/x (kept if there)."""
    debs, tree = out / "deb", (out / "x").resolve()
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        if not list(debs.glob(f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True)
    for deb in debs.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    return tree


def collect(tree: Path) -> list[Utterance]:
    utts = []
    listing = tree / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
    for key, text in asterisk_prompts(gzip.decompress(listing.read_bytes()).decode()):
        path = tree / ALLISON / f"{key}.wav"
        if path.is_file():
            utts.append(
                Utterance(str(path), sf.info(str(path)).duration, text, "allison")
            )
    for accent in ("en", "en_GB"):
        path = tree / f"usr/share/klettres/{accent}/syllab/no.ogg"
        utts.append(
            Utterance(
                str(path), sf.info(str(path)).duration, "no", f"klettres-{accent}"
            )
        )
    raw = tree / "usr/share/pocketsphinx/test/data/goforward.raw"
    wav = raw.with_suffix(".wav")  # headerless 16 kHz 16-bit little-endian mono
    sf.write(str(wav), np.fromfile(raw, dtype="<i2"), 16000, subtype="PCM_16")
    utts.append(
        Utterance(
            str(wav),
            sf.info(str(wav)).duration,
            "go forward ten meters",
            "pocketsphinx",
        )
    )
    return utts


CUT_MARGIN = 0.03  # seconds kept before and after an aligned word


def cut_words(utts: list[Utterance], out: Path) -> list[Utterance]:
    """Every grammar word (digits aside: those are recorded alone) inside a
    multi-word clip, cut at its aligned times into ``out``; one Utterance each."""
    from asr.decode.alignment import cut_manifest_words

    return cut_manifest_words(utts, COMMAND_WORDS, out, margin=CUT_MARGIN, min_words=2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--cut-words",
        action="store_true",
        help="also cut the command words out of the phrases (words.jsonl)",
    )
    args = ap.parse_args(argv)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        sys.exit("needs apt-get and dpkg-deb (Debian or Ubuntu)")
    utts = collect(fetch(args.out))
    write_manifest(args.out / "manifest.jsonl", utts)
    lines = ["| package | licence |", "|---|---|"]
    lines += [f"| {pkg} | {lic} |" for pkg, lic in PACKAGES.items()]
    (args.out / "SOURCES.md").write_text(__doc__ + "\n" + "\n".join(lines) + "\n")
    speakers = sorted({u.speaker for u in utts})
    print(
        f"{args.out}/manifest.jsonl: {len(utts)} clips, speakers {', '.join(speakers)}"
    )
    if args.cut_words:
        words = cut_words(utts, args.out / "words")
        write_manifest(args.out / "words.jsonl", words)
        print(f"{args.out}/words.jsonl: {len(words)} words cut from phrases")


if __name__ == "__main__":
    main()
