"""recipes/librispeech: prepare.py on a tiny tree in the real layout, the config,
and one training step on what it prepares."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra import compose, initialize_config_dir

from asr.data.manifest import read_manifest
from asr.data.text import normalize_text
from asr.model.checkpoint import load_model
from asr.train.__main__ import CONF_DIR, to_train_config
from asr.train.trainer import fit
from tests.conftest import ROOT, clip_rows


def load_prepare():
    """The recipe's prepare.py as a module (both recipes name it prepare.py)."""
    path = ROOT / "recipes" / "librispeech" / "prepare.py"
    spec = importlib.util.spec_from_file_location("librispeech_prepare", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its workers' functions must pickle by name
    spec.loader.exec_module(module)
    return module


prepare = load_prepare()

# subset -> speaker -> chapter -> number of utterances
TREE = {
    "train-clean-100": {"19": {"198": 2}, "26": {"495": 1}},
    "train-other-500": {"103": {"1240": 1}},
    "dev-clean": {"1272": {"128104": 1}},
    "test-clean": {"1089": {"134686": 2}},
    "test-other": {"1688": {"142285": 1}},
}


def fake_librispeech(root: Path) -> dict[str, tuple[float, str, str, str]]:
    """Writes the tree (FLAC from the real AN4 clips, upper-case transcripts with
    punctuation as in LibriSpeech) and returns id -> (seconds, text, speaker, subset).
    """
    clips = clip_rows()
    expected, k = {}, 0
    for subset, speakers in TREE.items():
        for speaker, chapters in speakers.items():
            for chapter, n in chapters.items():
                folder = root / subset / speaker / chapter
                folder.mkdir(parents=True)
                lines = []
                for u in range(n):
                    src, text = clips[k % len(clips)]
                    k += 1
                    uid = f"{speaker}-{chapter}-{u:04d}"
                    wav, rate = sf.read(str(src), dtype="float32")
                    sf.write(str(folder / f"{uid}.flac"), wav, rate)
                    ref = f"IT'S {text.upper()}"
                    lines.append(f"{uid} {ref}")
                    expected[uid] = (len(wav) / rate, ref, speaker, subset)
                (folder / f"{speaker}-{chapter}.trans.txt").write_text(
                    "\n".join(lines) + "\n"
                )
    return expected


def run(root: Path, out: Path, *extra: str) -> None:
    prepare.main(["--root", str(root), "--out", str(out), *extra])


def test_prepare_writes_one_manifest_per_subset(tmp_path, capsys):
    expected = fake_librispeech(tmp_path / "LibriSpeech")
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "1272" / "128104"
    with open(chapter / "1272-128104.trans.txt", "a") as f:
        f.write("1272-128104-0099 NO AUDIO FOR THIS LINE\n")
    run(tmp_path / "LibriSpeech", tmp_path / "m", "--jobs", "1")
    names = {p.name for p in (tmp_path / "m").glob("*.jsonl")}
    assert names == {f"{s}.jsonl" for s in [*TREE, "train"]}  # no dev-other
    seen = set()
    for subset in TREE:
        for u in read_manifest(tmp_path / "m" / f"{subset}.jsonl"):
            seconds, ref, speaker, where = expected[u.id]
            assert where == subset and u.speaker == speaker
            assert u.audio_filepath == str(
                (tmp_path / "LibriSpeech" / subset / speaker).resolve()
                / u.id.split("-")[1]
                / f"{u.id}.flac"
            )
            assert abs(u.duration - seconds) < 1e-3
            assert u.text == normalize_text(ref) and u.text.startswith("it's ")
            seen.add(u.id)
    assert seen == set(expected)
    train = read_manifest(tmp_path / "m" / "train.jsonl")
    assert [u.id for u in train] == ["19-198-0000", "19-198-0001", "26-495-0000"] + [
        "103-1240-0000"
    ]
    err = capsys.readouterr().err
    assert "1272-128104.trans.txt:2: skipped" in err and "no such audio" in err


def test_train_flag_pool_and_reruns(tmp_path, capsys):
    fake_librispeech(tmp_path / "LibriSpeech")
    out = tmp_path / "m"
    run(tmp_path / "LibriSpeech", out, "--jobs", "2", "--train", "train-clean-100")
    assert [u.speaker for u in read_manifest(out / "train.jsonl")] == ["19", "19", "26"]
    first = (out / "test-clean.jsonl").read_text()
    run(tmp_path / "LibriSpeech", out, "--jobs", "1")  # prepared subsets are kept
    assert "exists, kept" in capsys.readouterr().out
    assert len(read_manifest(out / "train.jsonl")) == 4  # now both train subsets
    run(tmp_path / "LibriSpeech", out, "--jobs", "2", "--overwrite")
    assert (out / "test-clean.jsonl").read_text() == first  # the pool changes nothing
    with pytest.raises(SystemExit, match="not present"):
        run(tmp_path / "LibriSpeech", out, "--train", "train-clean-360")
    with pytest.raises(SystemExit, match="no LibriSpeech subset"):
        run(tmp_path, out)


def test_durations_come_from_the_header_not_the_audio(tmp_path, monkeypatch):
    fake_librispeech(tmp_path / "LibriSpeech")

    def no_decoding(path, *args, **kwargs):
        raise AssertionError(f"{path} was decoded")

    monkeypatch.setattr("asr.audio.files.load_audio", no_decoding)
    run(tmp_path / "LibriSpeech", tmp_path / "m", "--jobs", "1")
    assert len(read_manifest(tmp_path / "m" / "train.jsonl")) == 4


def test_a_header_without_length_is_decoded(tmp_path):
    expected = fake_librispeech(tmp_path / "LibriSpeech")
    flac = tmp_path / "LibriSpeech" / "test-other" / "1688" / "142285"
    flac = flac / "1688-142285-0000.flac"
    blob = bytearray(flac.read_bytes())
    blob[21] &= 0xF0  # STREAMINFO total samples := 0 (unknown, as from a pipe)
    blob[22:26] = bytes(4)
    flac.write_bytes(bytes(blob))
    assert sf.info(str(flac)).frames in (0, 2**63 - 1)
    run(tmp_path / "LibriSpeech", tmp_path / "m", "--jobs", "1")
    (u,) = read_manifest(tmp_path / "m" / "test-other.jsonl")
    assert abs(u.duration - expected[u.id][0]) < 1e-3


def compose_librispeech(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_train_config(compose(config_name="librispeech", overrides=overrides))


def test_config_composes_with_the_large_model():
    cfg = compose_librispeech(
        ["data.train_manifest=t.jsonl", "data.dev_manifest=d.jsonl"]
    )
    assert (cfg.model.n_layers, cfg.model.hidden_size) == (5, 512)
    assert cfg.data.max_batch_seconds >= 300 and cfg.data.cmvn_max_utterances > 0
    assert cfg.augment.freq_masks > 0 and cfg.augment.time_masks > 0
    assert 0 < cfg.trainer.epochs < 50  # fewer, longer epochs than AN4


def test_prepared_tree_trains_one_step(tmp_path):
    fake_librispeech(tmp_path / "LibriSpeech")
    data = tmp_path / "data"
    run(tmp_path / "LibriSpeech", data, "--jobs", "1")
    cfg = compose_librispeech(
        [
            f"data.train_manifest={data / 'train.jsonl'}",
            f"data.dev_manifest={data / 'dev-clean.jsonl'}",
            "data.num_workers=0",
            "data.cmvn_max_utterances=3",
            "model.conv_channels=4",
            "model.hidden_size=16",
            "model.n_layers=1",
            "trainer.epochs=1",
            "trainer.device=cpu",
            "trainer.progress=false",
            f"trainer.out_dir={tmp_path / 'exp'}",
        ]
    )
    best = fit(cfg)
    model, tokenizer, meta = load_model(best)
    assert meta["steps"] == 1 and meta["n_train_utterances"] == 4
    assert set(tokenizer.symbols[1:]) <= set(" 'abcdefghijklmnopqrstuvwxyz0123456789")
    assert np.isfinite(meta["dev_wer"])
