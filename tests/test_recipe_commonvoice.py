"""recipes/commonvoice: prepare.py on a tiny release folder (TSVs + MP3 clips)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir

from asr.data.manifest import read_manifest
from asr.train.__main__ import CONF_DIR, to_train_config
from tests.conftest import ROOT, clip_rows

pytestmark = pytest.mark.skipif(
    "MP3" not in sf.available_formats(),
    reason="this libsndfile cannot write MP3 (needs libsndfile >= 1.1)",
)


def load_prepare():
    """The recipe's prepare.py as a module (both recipes name it prepare.py)."""
    path = ROOT / "recipes" / "commonvoice" / "prepare.py"
    spec = importlib.util.spec_from_file_location("commonvoice_prepare", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its workers' functions must pickle by name
    spec.loader.exec_module(module)
    return module


prepare = load_prepare()

HEADER = (
    "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\t"
    "down_votes\tage\tgender\taccents\tvariant\tlocale\tsegment"
)
# (client, clip, sentence, expected text or None when the row is dropped)
TRAIN = [
    ("aa11", "c1.mp3", "Enter seven.", "enter seven"),
    ("aa11", "c2.mp3", 'He said "hello, world" to me.', "he said hello world to me"),
    ("bb22", "c3.mp3", "It's a \"test", "it's a test"),
    ("bb22", "c8.mp3", '"Opened, never closed', "opened never closed"),  # csv quoting
    ("bb22", "c4.mp3", "Café naïve — Straße!", "cafe naive strasse"),
    ("cc33", "c5.mp3", "Привет мир", None),  # no a-z spelling: dropped, counted
    ("cc33", "c6.mp3", "Hello 東京", None),
    ("cc33", "gone.mp3", "The clip is missing.", None),  # warned and skipped
    ("dd44", "c7.mp3", "?!", None),  # empty after normalisation
]
DEV = [
    (
        "ee55",
        "d1.mp3",
        "Tone at forty-eight kilohertz.",
        "tone at forty eight kilohertz",
    )
]


def write_tsv(path: Path, rows) -> None:
    lines = [HEADER] + [
        f"{client}\t{clip}\t{k}\t{sentence}\t\t2\t0\t\t\t\t\ten\t"
        for k, (client, clip, sentence, _) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def fake_release(root: Path) -> dict[str, float]:
    """A release folder: MP3s from the real AN4 clips (16 kHz) and one 48 kHz tone;
    returns clip -> duration in seconds."""
    (root / "clips").mkdir(parents=True)
    durations, clips = {}, clip_rows()
    for k, (_, clip, _, _) in enumerate(TRAIN):
        if clip != "gone.mp3":
            wav, rate = sf.read(str(clips[k % len(clips)][0]), dtype="float32")
            sf.write(str(root / "clips" / clip), wav, rate)
            durations[clip] = len(wav) / rate
    tone = 0.2 * np.sin(np.arange(48000 * 2 + 123) * 2 * np.pi * 300 / 48000)
    sf.write(str(root / "clips" / "d1.mp3"), tone.astype(np.float32), 48000)
    durations["d1.mp3"] = len(tone) / 48000
    write_tsv(root / "train.tsv", TRAIN)
    write_tsv(root / "dev.tsv", DEV)
    write_tsv(root / "test.tsv", TRAIN[:1])
    return durations


def run(release: Path, out: Path, *extra: str) -> None:
    prepare.main(["--release", str(release), "--out", str(out), *extra])


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_prepare_writes_train_dev_test(tmp_path, capsys, jobs):
    durations = fake_release(tmp_path / "en")
    run(tmp_path / "en", tmp_path / "m", "--jobs", jobs)
    for split, rows in [("train", TRAIN), ("dev", DEV), ("test", TRAIN[:1])]:
        utts = read_manifest(tmp_path / "m" / f"{split}.jsonl")
        kept = [r for r in rows if r[3] is not None]
        assert [u.text for u in utts] == [r[3] for r in kept]
        assert [u.speaker for u in utts] == [r[0] for r in kept]
        for u, (_, clip, _, _) in zip(utts, kept):
            assert u.audio_filepath == str((tmp_path / "en" / "clips" / clip).resolve())
            assert abs(u.duration - durations[clip]) < 1e-3
    out, err = capsys.readouterr()
    assert "gone.mp3: no such audio file" in err
    assert "train: 5 utterances" in out
    assert "1 missing/unreadable clips, 1 empty sentences, 2 sentences with" in out


def test_durations_come_from_the_mp3_headers(tmp_path, monkeypatch):
    fake_release(tmp_path / "en")

    def no_decoding(path, *args, **kwargs):
        raise AssertionError(f"{path} was decoded")

    monkeypatch.setattr("asr.audio.files.load_audio", no_decoding)
    run(tmp_path / "en", tmp_path / "m", "--jobs", "1", "--splits", "dev")
    assert len(read_manifest(tmp_path / "m" / "dev.jsonl")) == 1


def test_a_non_latin_release_prepares_without_crashing(tmp_path, capsys):
    root = tmp_path / "ru"
    (root / "clips").mkdir(parents=True)
    wav, rate = sf.read(str(clip_rows()[0][0]), dtype="float32")
    sf.write(str(root / "clips" / "r1.mp3"), wav, rate)
    write_tsv(
        root / "train.tsv", [("ff66", "r1.mp3", "Съешь же ещё этих булок.", None)]
    )
    run(root, tmp_path / "m", "--jobs", "1", "--splits", "train")
    out = capsys.readouterr().out
    assert "train: 0 utterances" in out and "needs another alphabet" in out
    assert (tmp_path / "m" / "train.jsonl").read_text() == ""


def test_missing_columns_or_files_are_reported(tmp_path):
    (tmp_path / "train.tsv").write_text("path\tsentence\nx.mp3\thi\n")
    with pytest.raises(SystemExit, match="no column.*client_id"):
        run(tmp_path, tmp_path / "m", "--splits", "train")
    with pytest.raises(SystemExit, match="dev.tsv: no such file"):
        run(tmp_path, tmp_path / "m", "--splits", "dev")


def test_normalize_sentence():
    assert prepare.normalize_sentence("Don't STOP—now!") == ("don't stop now", "")
    assert prepare.normalize_sentence("Ærø") == ("", "æø")
    assert prepare.normalize_sentence("Ελλάδα")[0] == ""


def test_config_composes():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        raw = compose(
            config_name="commonvoice",
            overrides=["data.train_manifest=t.jsonl", "data.dev_manifest=d.jsonl"],
        )
    cfg = to_train_config(raw)
    assert (cfg.model.n_layers, cfg.model.hidden_size) == (5, 512)
    assert cfg.data.train_manifest == "t.jsonl" and cfg.data.cmvn_max_utterances > 0
    assert cfg.augment.time_masks > 0 and 0 < cfg.trainer.epochs < 50
