"""recipes/an4/prepare.py on a fake tree in the official an4_sphere layout."""

from __future__ import annotations

import shutil
from pathlib import Path

from asr.data.manifest import read_manifest
from tests.conftest import CLIPS, SHARED_AN4, load_recipe_prepare

prepare = load_recipe_prepare("an4")


def fake_an4(
    root: Path,
    with_test: bool,
    train_speakers: tuple[str, ...] = ("fa", "fb", "mc", "md"),
) -> None:
    """Training speakers (4 by default) x 2 utterances (+ 1 test speaker), real
    SPHERE audio."""
    src = sorted(CLIPS.glob("*.sph"))
    (root / "etc").mkdir(parents=True)
    portions = [("train", "an4_clstk", list(train_speakers))]
    if with_test:
        portions.append(("test", "an4test_clstk", ["fx"]))
    for portion, folder, speakers in portions:
        ids, lines = [], []
        for s in speakers:
            for k in range(2):
                uid = f"an{k}-{s}-b"
                (root / "wav" / folder / s).mkdir(parents=True, exist_ok=True)
                shutil.copy(src[k], root / "wav" / folder / s / f"{uid}.sph")
                ids.append(f"{folder}/{s}/{uid}")
                text = "<s> ENTER SEVEN </s>" if portion == "test" else "ENTER SEVEN"
                lines.append(f"{text} ({uid})")
        (root / "etc" / f"an4_{portion}.fileids").write_text("\n".join(ids) + "\n")
        (root / "etc" / f"an4_{portion}.transcription").write_text("\n".join(lines))


def run_prepare(tmp_path: Path, dev_speakers: int) -> None:
    args = ["--an4", tmp_path / "an4", "--out", tmp_path / "m"]
    prepare.main([*map(str, args), "--dev-speakers", str(dev_speakers)])


def test_prepare_holds_out_whole_speakers_and_writes_test(tmp_path):
    fake_an4(tmp_path / "an4", with_test=True)
    run_prepare(tmp_path, dev_speakers=1)
    train = read_manifest(tmp_path / "m" / "train.jsonl")
    dev = read_manifest(tmp_path / "m" / "dev.jsonl")
    test = read_manifest(tmp_path / "m" / "test.jsonl")
    assert (len(train), len(dev), len(test)) == (6, 2, 2)
    assert not {u.speaker for u in train} & {u.speaker for u in dev}
    assert {u.speaker for u in test} == {"fx"}
    assert all(u.text == "enter seven" and u.duration > 0.5 for u in test + train)
    assert all(Path(u.audio_filepath).is_file() for u in train + dev + test)


def test_prepare_without_test_portion(tmp_path):
    fake_an4(tmp_path / "an4", with_test=False)
    run_prepare(tmp_path, dev_speakers=2)
    assert not (tmp_path / "m" / "test.jsonl").exists()
    assert len(read_manifest(tmp_path / "m" / "dev.jsonl")) == 4


def test_prepare_on_the_shared_an4_copy(tmp_path):
    import pytest

    if not SHARED_AN4.is_dir():
        pytest.skip("../shared/data/an4 is not here")
    prepare.main(["--an4", str(SHARED_AN4), "--out", str(tmp_path)])
    train = read_manifest(tmp_path / "train.jsonl")
    dev = read_manifest(tmp_path / "dev.jsonl")
    assert len(train) + len(dev) == 948
    assert len({u.speaker for u in dev}) == 8
