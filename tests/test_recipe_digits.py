"""recipes/digits/prepare.py on a fake FSDD tree; conf/digits.yaml composes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir

from asr.data.manifest import read_manifest
from asr.train.__main__ import CONF_DIR, to_train_config
from tests.conftest import TEST_DATA, load_recipe_prepare, run_recipe

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


def fake_synth(folder: Path) -> Path:
    """A synthetic-speech folder of one 0.1 s 16 kHz utterance, "one two", with a
    manifest.jsonl of relative paths as scripts/synthesize.py writes it."""
    (folder / "wav").mkdir(parents=True)
    sf.write(folder / "wav" / "0000000.wav", np.zeros(1600, np.float32), 16000)
    line = '{"audio_filepath": "wav/0000000.wav", "duration": 0.1, "text": "one two"}'
    (folder / "manifest.jsonl").write_text(line + "\n")
    return folder


def stage_1_split(tmp_path: Path, data: Path) -> list[str]:
    """A fake FSDD in ``tmp_path``/fsdd, split by run.sh stage 1 into ``data``
    with ann held out; returns the options naming both, for later stages."""
    fake_fsdd(tmp_path / "fsdd")
    common = ["--fsdd", str(tmp_path / "fsdd"), "--data", str(data)]
    run_recipe(["bash", "recipes/digits/run.sh", "--stage", "1", "--stop-stage", "1",
               "--dev-speaker", "ann", *common])  # fmt: skip
    return common


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
    synth = fake_synth(tmp_path / "synth")
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
    # the best setting measured on every held-out speaker (recipes/digits/README)
    assert (cfg.trainer.epochs, cfg.trainer.average_last) == (30, 5)
    assert (cfg.augment.band_limit_prob, cfg.augment.edge_crop_prob) == (0.6, 0.5)


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


def test_an4_digit_words_are_cut_at_their_aligned_times(tmp_path, an4_manifest):
    """--train train_an4d: each digit word of AN4's connected speech becomes a clip
    of its own (prepare.py an4-digits) that the bundled model, reading it alone,
    hears as that digit, and joins FSDD train and the synthetic speech."""
    from asr.decode.decoder import DecodingOptions
    from asr.model.bundled import default_model_path
    from asr.model.checkpoint import load_model
    from asr.transcribe import Transcriber

    an4 = tmp_path / "an4"
    an4.mkdir()
    (an4 / "train.jsonl").write_text(an4_manifest.read_text())  # recipes/an4's name
    data, cut = tmp_path / "split", tmp_path / "an4_digits"
    common = stage_1_split(tmp_path, data)
    env = {"AN4_DATA": str(an4), "AN4_DIGITS": str(cut)}
    run_recipe(["bash", "recipes/digits/run.sh", "--stage", "3", "--stop-stage", "3",
               "--synth", str(fake_synth(tmp_path / "synth")), "--train",
               "train_an4d", *common], env)  # fmt: skip
    clips = read_manifest(cut / "manifest.jsonl")  # made by stage 3: it was missing
    merged = read_manifest(data / "train_an4d.jsonl")
    assert len(merged) == 8 + 1 + len(clips) and merged[-len(clips) :] == clips
    # 'one five two one three' gives five; 'enter forty one' one (forty: no digit);
    # 'nineteen sixty seven' only 'seven'; 'stop' and spelled letters none
    assert [u.text for u in clips] == ["one", "one", "five", "two", "one", "three",
                                       "seven"]  # fmt: skip
    assert {u.speaker for u in clips} == {"an4"}
    for u in clips:
        wav, rate = sf.read(u.audio_filepath)
        assert rate == 16000 and u.duration == pytest.approx(len(wav) / rate, abs=1e-4)
        assert 0.1 < u.duration < 0.7  # a word, not the whole phrase
    model, tokenizer, _ = load_model(default_model_path())
    reader = Transcriber(model, tokenizer, DecodingOptions(pad_ms=200))
    heard = [t.text for t in reader.transcribe_files(u.audio_filepath for u in clips)]
    assert sum(h == u.text for h, u in zip(heard, clips)) >= 6, heard


def test_run_sh_split_and_synth_folders_are_options(tmp_path):
    """Another fold: its own manifests (--data), the shared synthetic speech."""
    synth = fake_synth(tmp_path / "synth")
    data = tmp_path / "split_ann"
    common = stage_1_split(tmp_path, data)
    assert {u.speaker for u in read_manifest(data / "dev.jsonl")} == {"ann"}
    run_recipe(["bash", "recipes/digits/run.sh", "--stage", "3", "--stop-stage", "3",
               "--synth", str(synth), "--train", "train_synth", *common])  # fmt: skip
    merged = read_manifest(data / "train_synth.jsonl")
    assert len(merged) == 9 and merged[-1].text == "one two"
    assert {u.speaker for u in merged[:-1]} == {"bob", "cid"}


def test_stage_3b_equalises_the_speakers_for_stages_4_to_6(tmp_path):
    """By default stage 3 also writes every clip through its speaker's filter
    (asr speaker-eq) towards the training speakers' average; the held-out speaker
    is measured on at most 100 of his clips and scored on the others (none of
    this fake speaker's 4). --speaker-eq 0 leaves the audio alone."""
    synth = fake_synth(tmp_path / "synth")
    data = tmp_path / "split"
    common = stage_1_split(tmp_path, data)
    stage3 = ["bash", "recipes/digits/run.sh", "--stage", "3", "--stop-stage", "3",
              "--synth", str(synth), "--train", "train_synth", *common]  # fmt: skip
    run_recipe([*stage3, "--speaker-eq", "0"])
    assert not (data / "eq").exists()
    out = run_recipe(stage3)
    assert "stage 3b" in out
    reference = json.loads((data / "eq" / "reference.json").read_text())
    assert reference["n_speakers"] == 2  # bob and cid; the silent synthetic clip none
    train = read_manifest(data / "eq" / "train_synth" / "manifest.jsonl")
    assert [u.text for u in train] == [u.text for u in read_manifest(
        data / "train_synth.jsonl")]  # fmt: skip
    assert all("/eq/train_synth/wav/" in u.audio_filepath for u in train)
    gains = json.loads((data / "eq" / "train_synth" / "gains.json").read_text())
    assert set(gains) == {"bob", "cid"}
    dev = read_manifest(data / "eq" / "dev" / "manifest.jsonl")
    assert len(dev) == 4 and {u.speaker for u in dev} == {"ann"}
    assert (data / "eq" / "dev" / "unseen.jsonl").read_text() == ""


def _report(path: Path, errors: list[int]) -> None:
    """An `asr evaluate` TSV report: one-word references, these word errors."""
    head = "id\treference\thypothesis\tref_words\tsubstitutions\tdeletions\t"
    rows = [f"{i}\tone\tx\t1\t{e}\t0\t0\t{e}\t{e}" for i, e in enumerate(errors)]
    path.write_text(head + "insertions\tword_errors\tchar_errors\n" + "\n".join(rows))


def test_folds_table_per_speaker_and_pooled(tmp_path):
    """folds.sh skips finished folds and tabulates the unselected checkpoint:
    avg.pt where the fold averaged epochs, else last.pt."""
    a, b = tmp_path / "ann", tmp_path / "bob"
    for d in (a, b):
        d.mkdir()
    (a / "avg.pt").write_bytes(b"")
    _report(a / "dev.last.greedy.tsv", [1, 1, 1, 1])  # ignored: ann has avg.pt
    for kind, errors in [
        ("greedy", [1, 0]),
        ("lexicon", [0, 0]),
        ("lexicon_lm", [0, 1]),
    ]:
        _report(a / f"dev.avg.{kind}.tsv", errors)
    _report(b / "dev.last.greedy.tsv", [1, 1, 0, 0, 0, 0, 0, 0])
    _report(b / "dev.last.lexicon.tsv", [0, 0, 0, 0, 0, 0, 0, 1])
    out = run_recipe(
        ["bash", "recipes/digits/folds.sh"],
        {"SPEAKERS": "ann bob", "EXP": str(tmp_path)},
    )
    lines = out.splitlines()
    assert lines[2] == "| ann (avg.pt) | 50.00% | 0.00% | 50.00% |"
    assert lines[3] == "| bob (last.pt) | 25.00% | 12.50% | - |"
    # pooled over words: (1 + 2) / 10 and 1 / 10; a missing report leaves a gap
    assert lines[4] == "| all folds (pooled) | 30.00% | 10.00% | - |"
    assert (tmp_path / "results.md").read_text() == out


def test_edges_counts_the_clips_cut_into_the_word(tmp_path, capsys):
    """A real clip with pauses around its word counts as whole; the same clip cut
    2 frames before its loudest 10 ms, or 2 after, counts as clipped there."""
    wav, rate = sf.read(TEST_DATA / "7_lucas_1.wav", dtype="int16")
    peak = 17 * rate // 100  # its loudest 10 ms frame is the 18th
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    takes = {
        "whole": [wav, wav],
        "late": [wav[peak - 2 * rate // 100 :], wav],
        "early": [wav[: peak + 3 * rate // 100], wav[peak - 2 * rate // 100 :]],
    }
    for speaker, clips in takes.items():
        for n, audio in enumerate(clips):
            sf.write(folder / f"7_{speaker}_{n}.wav", audio, rate, subtype="PCM_16")
    edges = prepare.clipped_edges(prepare.read_fsdd(tmp_path / "fsdd"))
    assert {s: e[:2] for s, e in edges.items()} == {
        "whole": (0.0, 0.0),
        "late": (0.5, 0.0),
        "early": (0.5, 0.5),
    }
    assert edges["whole"][2] == pytest.approx(len(wav) / rate)
    prepare.main(["edges", "--fsdd", str(tmp_path / "fsdd")])
    assert "| early | 50% | 50% |" in capsys.readouterr().out


def test_stage_3_makes_the_an4_manifests_when_they_are_missing(tmp_path):
    """--train train_an4(d) needs recipes/an4's manifests: stage 3 runs its
    prepare.py on $AN4 when $AN4_DATA has no train.jsonl."""
    from tests.test_recipe_an4 import fake_an4

    # 10 speakers: recipes/an4 holds 8 of them out as its dev set
    fake_an4(tmp_path / "an4", False, tuple(f"s{k}" for k in range(10)))
    data, an4_data = tmp_path / "split", tmp_path / "an4_m"
    common = stage_1_split(tmp_path, data)
    env = {"AN4": str(tmp_path / "an4"), "AN4_DATA": str(an4_data)}
    run_recipe(["bash", "recipes/digits/run.sh", "--stage", "3", "--stop-stage", "3",
               "--synth", str(fake_synth(tmp_path / "synth")), "--train",
               "train_an4", *common], env)  # fmt: skip
    an4_train = read_manifest(an4_data / "train.jsonl")
    assert an4_train and {u.text for u in an4_train} == {"enter seven"}
    merged = read_manifest(data / "train_an4.jsonl")
    assert len(merged) == 8 + 1 + len(an4_train)
    assert merged[-1].speaker == an4_train[-1].speaker


def test_stage_4_measures_the_features_of_the_training_overrides(tmp_path):
    """run.sh hands its Hydra overrides to `asr stats`: features.n_mels=40 gives
    40-band statistics, which stage 5 would otherwise refuse."""
    from asr.model.checkpoint import safe_load

    data, exp = tmp_path / "split", tmp_path / "exp"
    common = stage_1_split(tmp_path, data)
    run_recipe(["bash", "recipes/digits/run.sh", "--stage", "4", "--stop-stage", "4",
                "--train", "train", "--speaker-eq", "0", "--exp", str(exp), *common,
                "features.n_mels=40", "model.hidden_size=8"])  # fmt: skip
    stats = safe_load(exp / "cmvn.pt")
    assert stats["mean"].shape == (40,) and stats["level_db"] == -25.0
