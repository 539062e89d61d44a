"""Kaldi data directories -> manifests (asr.data.kaldi, asr import-kaldi)."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio.files import load_audio
from asr.cli.app import main
from asr.data.kaldi import KaldiDirError, import_kaldi_dir
from asr.data.manifest import read_manifest

TEST_DATA = Path(__file__).parent / "data"
CLIP_A = TEST_DATA / "3_jackson_0.wav"
CLIP_B = TEST_DATA / "7_lucas_1.wav"
SHARED_SO762 = Path(__file__).resolve().parents[2] / "shared/data/speechocean762"


def write_dir(root: Path, files: dict[str, str]) -> Path:
    d = root / "data" / "train"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_plain_directory_with_relative_paths(tmp_path):
    (tmp_path / "wav").mkdir()
    a, b = tmp_path / "wav" / "a.wav", tmp_path / "wav" / "b.wav"
    a.write_bytes(CLIP_A.read_bytes())
    b.write_bytes(CLIP_B.read_bytes())
    d = write_dir(
        tmp_path,
        {
            "wav.scp": "u1 wav/a.wav\nu2\twav/b.wav\nu3 wav/missing.wav\n",
            "text": "u1 THREE, Three!\nu2 seven\nu3 gone\n",
            "utt2spk": "u1 jackson\nu2 lucas\nu3 x\n",
        },
    )
    done = import_kaldi_dir(d, audio_root=tmp_path)
    assert [(Path(u.audio_filepath), u.text, u.speaker) for u in done.utts] == [
        (a, "three three", "jackson"),
        (b, "seven", "lucas"),
    ]
    assert done.utts[0].duration == pytest.approx(sf.info(str(a)).duration)
    assert len(done.skipped) == 1 and "missing.wav" in done.skipped[0]
    # the default root is the data directory's parent (a recipe's data/<set>)
    (tmp_path / "data" / "wav").mkdir()
    (tmp_path / "data" / "wav" / "a.wav").write_bytes(CLIP_A.read_bytes())
    assert len(import_kaldi_dir(d).utts) == 1


def test_segments_are_cut_into_wavs(tmp_path):
    d = write_dir(
        tmp_path,
        {
            "wav.scp": f"rec {CLIP_A}\n",
            "segments": "s1 rec 0.10 0.30\ns2 rec 0.20 0.25\ns3 rec 99 100\n",
            "text": "s1 one\ns2 two\ns3 three\n",
        },
    )
    with pytest.raises(KaldiDirError, match="audio_out"):
        import_kaldi_dir(d)
    done = import_kaldi_dir(d, audio_out=tmp_path / "cut")
    wav = load_audio(CLIP_A)
    assert [u.text for u in done.utts] == ["one", "two"]
    assert done.utts[0].duration == pytest.approx(0.2)
    cut = load_audio(done.utts[0].audio_filepath)
    np.testing.assert_allclose(cut, wav[1600:4800], atol=1 / 32768)
    assert "outside" in done.skipped[0]


def test_pipes_run_only_when_allowed(tmp_path):
    cmd = f"cat {shlex.quote(str(CLIP_B))} |"
    d = write_dir(tmp_path, {"wav.scp": f"u1 {cmd}\n", "text": "u1 seven\n"})
    refused = import_kaldi_dir(d, audio_out=tmp_path / "out")
    assert not refused.utts
    assert "not run" in refused.skipped[0] and "--run-pipes" in refused.skipped[0]
    done = import_kaldi_dir(d, audio_out=tmp_path / "out", run_pipes=True)
    np.testing.assert_allclose(
        load_audio(done.utts[0].audio_filepath), load_audio(CLIP_B), atol=1 / 32768
    )
    bad = write_dir(tmp_path / "bad", {"wav.scp": "u1 false |\n", "text": "u1 x\n"})
    failed = import_kaldi_dir(bad, audio_out=tmp_path / "out2", run_pipes=True)
    assert not failed.utts and "failed" in failed.skipped[0]


def test_not_a_kaldi_directory(tmp_path, capsys):
    with pytest.raises(KaldiDirError, match="wav.scp"):
        import_kaldi_dir(tmp_path)
    assert main(["import-kaldi", str(tmp_path), "--output", "x.jsonl"]) == 2
    assert "not a Kaldi data directory" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED_SO762.is_dir(), reason="needs ../shared/data")
def test_speechocean762_imports_whole(tmp_path, capsys):
    out = tmp_path / "so.jsonl"
    assert (
        main(["import-kaldi", str(SHARED_SO762 / "train"), "--output", str(out)]) == 0
    )
    assert "2500 utterances" in capsys.readouterr().out
    utts = read_manifest(out)
    assert len({u.speaker for u in utts}) == 125
    first = utts[0]
    assert first.text == "we call it bear" and first.speaker == "0001"
    assert Path(first.audio_filepath).is_absolute()
    assert len(load_audio(first.audio_filepath)) / 16000 == pytest.approx(
        first.duration, abs=0.05
    )
