"""AN4 (official `an4_sphere` layout) -> train / dev / test JSONL manifests.

Whole speakers are held out of the training portion as the dev set; the test
manifest is written only when the test portion (wav/an4test_clstk) exists.

    python recipes/an4/prepare.py --an4 ../shared/data/an4 --out data/an4
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import soundfile as sf

from asr.data.manifest import Utterance, split_speakers, write_manifest

_LINE = re.compile(r"^(?:<s>\s*)?(?P<text>.*?)(?:\s*</s>)?\s*\((?P<id>[^()]+)\)\s*$")


def read_portion(root: Path, portion: str) -> list[Utterance]:
    """Utterances of ``portion`` ('train' or 'test') with text, speaker, duration."""
    etc = root / "etc"
    texts = {}
    for line in (etc / f"an4_{portion}.transcription").read_text().splitlines():
        m = _LINE.match(line.strip())
        if m:
            texts[m["id"]] = m["text"].strip()
    utts = []
    for fileid in (etc / f"an4_{portion}.fileids").read_text().split():
        path = root / "wav" / f"{fileid}.sph"
        uid = Path(fileid).name
        if uid not in texts or not path.is_file():
            print(
                f"warning: {fileid}: no transcript or audio, skipped", file=sys.stderr
            )
            continue
        info = sf.info(str(path))
        utts.append(
            Utterance(
                str(path.resolve()),
                info.frames / info.samplerate,
                texts[uid].lower(),
                speaker=Path(fileid).parent.name,
            )
        )
    return utts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--an4", type=Path, required=True, help="AN4 root (has etc/, wav/)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the manifests")
    ap.add_argument("--dev-speakers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    train, dev = split_speakers(
        read_portion(args.an4, "train"), args.dev_speakers, args.seed
    )
    write_manifest(args.out / "train.jsonl", train)
    write_manifest(args.out / "dev.jsonl", dev)
    print(
        f"train: {len(train)} utterances, dev: {len(dev)} utterances "
        f"({args.dev_speakers} held-out speakers)"
    )
    if (args.an4 / "etc" / "an4_test.fileids").is_file():
        test = read_portion(args.an4, "test")
        write_manifest(args.out / "test.jsonl", test)
        print(f"test: {len(test)} utterances")


if __name__ == "__main__":
    main()
