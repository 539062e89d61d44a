"""recipes/digits/prepare.py on a fake FSDD tree; conf/digits.yaml composes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir

from asr.data import read_manifest
from asr.train import CONF_DIR, to_train_config
from tests.conftest import TEST_DATA, load_recipe_prepare

prepare = load_recipe_prepare("digits")

SPEAKERS = ["ann", "bob", "cid"]


def fake_fsdd(root: Path) -> dict[str, float]:
    """3 speakers x digits 3 and 7 x 2 takes, from the two real FSDD clips; the
    second take is cut to half its length. Returns each file's duration."""
    (root / "recordings").mkdir(parents=True)
    durations = {}
    for clip in sorted(TEST_DATA.glob("*_*_*.wav")):
        wav, rate = sf.read(clip, dtype="int16")
        digit = clip.name.split("_")[0]
        for speaker in SPEAKERS:
            for n, audio in enumerate([wav, wav[: len(wav) // 2]]):
                name = f"{digit}_{speaker}_{n}.wav"
                sf.write(root / "recordings" / name, audio, rate, subtype="PCM_16")
                durations[name] = len(audio) / rate
    (root / "recordings" / "README.wav").write_bytes(b"")  # not an FSDD name
    return durations


def test_prepare_holds_out_one_speaker(tmp_path):
    durations = fake_fsdd(tmp_path / "fsdd")
    out = tmp_path / "m"
    prepare.main(
        ["--fsdd", str(tmp_path / "fsdd"), "--out", str(out)]
        + ["--dev-speaker", "bob", "--n-strings", "5"]
    )
    train = read_manifest(out / "train.jsonl")
    dev = read_manifest(out / "dev.jsonl")
    assert (len(train), len(dev)) == (8, 4)
    assert {u.speaker for u in dev} == {"bob"}
    assert {u.speaker for u in train} == {"ann", "cid"}
    for u in train + dev:
        name = Path(u.audio_filepath).name
        assert Path(u.audio_filepath).is_absolute() and Path(u.audio_filepath).is_file()
        assert u.text == {"3": "three", "7": "seven"}[name[0]]
        assert u.duration == pytest.approx(durations[name], abs=1e-3)
    assert min(u.duration for u in dev) < 0.6 * max(u.duration for u in dev)
    texts = (out / "synth_texts.txt").read_text().splitlines()
    assert texts[:10] == prepare.DIGITS and len(set(texts)) == 15
    assert all(2 <= len(t.split()) <= 4 for t in texts[10:])
    lexicon = (out / "lexicon.txt").read_text().splitlines()
    assert "seven\ts e v e n |" in lexicon and len(lexicon) == 10


def test_default_dev_speaker_is_nicolas():
    assert prepare.DEV_SPEAKER == "nicolas"


def test_unknown_dev_speaker_is_an_error(tmp_path):
    fake_fsdd(tmp_path / "fsdd")
    with pytest.raises(SystemExit, match="nicolas"):
        prepare.main(["--fsdd", str(tmp_path / "fsdd"), "--out", str(tmp_path / "m")])


@pytest.mark.parametrize("rate", [0, 8000])
def test_merge_keeps_relative_paths_valid(tmp_path, rate):
    fake_fsdd(tmp_path / "fsdd")
    out = tmp_path / "m"
    prepare.main(
        ["--fsdd", str(tmp_path / "fsdd"), "--out", str(out)] + ["--dev-speaker", "cid"]
    )
    synth = tmp_path / "synth"
    (synth / "wav").mkdir(parents=True)
    sf.write(synth / "wav" / "0000000.wav", np.zeros(1600, np.float32), 16000)
    line = '{"audio_filepath": "wav/0000000.wav", "duration": 0.1, "text": "one two"}'
    (synth / "manifest.jsonl").write_text(line + "\n")
    merged = out / "train_synth.jsonl"
    prepare.main(
        ["merge", str(merged), str(out / "train.jsonl")]
        + [str(synth / "manifest.jsonl"), "--rate", str(rate)]
    )
    utts = read_manifest(merged)
    assert len(utts) == 9 and utts[-1].text == "one two"
    assert all(Path(u.audio_filepath).is_file() for u in utts)
    info = sf.info(utts[-1].audio_filepath)
    assert info.samplerate == (rate or 16000) and info.duration == pytest.approx(0.1)
    assert all(sf.info(u.audio_filepath).samplerate == 8000 for u in utts[:-1])


def test_digits_config_composes():
    overrides = ["data.train_manifest=train.jsonl", "data.dev_manifest=dev.jsonl"]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = to_train_config(compose(config_name="digits", overrides=overrides))
    assert cfg.features.level_db == -25.0 and cfg.features.n_mels == 80
    assert cfg.augment.speed_factors and cfg.augment.freq_masks > 0
    assert cfg.model.hidden_size <= 128 and cfg.trainer.out_dir == "exp/digits"


def test_merge_band_limits_sphere_files_to_wav_copies(tmp_path):
    """AN4's .sph files join the digits training set (train_an4) as 8 kHz WAVs."""
    an4 = tmp_path / "an4" / "fash"
    an4.mkdir(parents=True)
    tone = np.sin(2 * np.pi * 300 * np.arange(16000) / 16000).astype(np.float32)
    sf.write(an4 / "an251-fash-b.sph", 0.5 * tone, 16000, format="NIST")
    line = json.dumps(
        {"audio_filepath": str(an4 / "an251-fash-b.sph"), "duration": 1.0,
         "text": "yes", "speaker": "fash"}
    )  # fmt: skip
    (tmp_path / "an4.jsonl").write_text(line + "\n")
    merged = tmp_path / "m" / "train_an4.jsonl"
    prepare.main(["merge", str(merged), str(tmp_path / "an4.jsonl"), "--rate", "8000"])
    (utt,) = read_manifest(merged)
    assert utt.audio_filepath.endswith("train_an4_wav/fash_an251-fash-b.wav")
    wav, rate = sf.read(utt.audio_filepath)
    assert rate == 8000 and len(wav) == 8000 and utt.speaker == "fash"
    assert np.abs(wav).max() == pytest.approx(0.5, abs=0.02)
