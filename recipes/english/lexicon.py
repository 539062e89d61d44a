"""Pronunciations for the words of a phone run's manifests that the CMU dictionary
lacks (names, rare words: LibriSpeech's "kirkleatham", "shimerda"), from
festival's English lexicon and letter-to-sound rules (Debian's festival and
festvox-kallpc16k, the same that scripts/synthesize.py speaks with).

    python recipes/english/lexicon.py data/english/train.jsonl \
        data/english/dev.jsonl --out data/english/extra.dict

Writes a CMUdict-format file (``word PH PH ...``) for data.lexicon=; festival's
"ax" and "axr" become ARPAbet AH and ER, apostrophes are left out of what it is
asked ("abalone's" -> "abalones"). Prints how many words it pronounced.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

from asr.data.lexicon import PHONES, Lexicon, cmudict
from asr.data.manifest import read_manifest
from asr.data.text import normalize_text

RADIO = {"ax": "AH", "axr": "ER"}  # festival's radio phones beyond ARPAbet's
_SYLLABLE = re.compile(r"\(\(([a-z ]+)\) \d\)")  # ((k er) 1): phones, stress


def missing_words(manifests: list[str]) -> list[str]:
    known = cmudict()
    words = {
        w
        for m in manifests
        for u in read_manifest(m)
        for w in normalize_text(u.text).split()
        if w not in known
    }
    return sorted(words)


def festival_pronunciations(words: list[str]) -> Lexicon:
    """One festival process answers every ``lex.lookup``; words it cannot
    pronounce (or pronounces with phones outside ARPAbet) are left out."""
    if shutil.which("festival") is None:
        raise SystemExit("festival is not installed (apt-get install festival)")
    asked = [w.replace("'", "") for w in words]
    script = "".join(f'(print (lex.lookup "{w}" nil))\n' for w in asked)
    out = subprocess.run(
        ["festival", "--pipe"], input=script, capture_output=True, text=True
    ).stdout
    answers = [line for line in out.splitlines() if line.startswith('("')]
    lexicon = Lexicon()
    for word, line in zip(words, answers):
        phones = [
            RADIO.get(p, p.upper())
            for syllable in _SYLLABLE.findall(line)
            for p in syllable.split()
        ]
        if phones and set(phones) <= set(PHONES):
            lexicon.add(word, phones)
    return lexicon


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifests", nargs="+")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    words = missing_words(args.manifests)
    lexicon = festival_pronunciations(words) if words else Lexicon()
    lexicon.write(args.out)
    print(
        f"{len(words)} word(s) not in the CMU dictionary, {len(lexicon)} "
        f"pronounced by festival: {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
