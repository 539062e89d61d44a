from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from asr.cli.app import main
from asr.decode.metrics import score
from tests.conftest import ROOT, TEST_DATA, clip_rows


def test_transcribe_prints_a_line_per_file_and_skips_bad_ones(tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    rows = clip_rows()
    files = [str(p) for p, _ in rows[:2]] + [str(bad)] + [str(p) for p, _ in rows[2:]]
    code = main(["transcribe", *files])
    out, err = capsys.readouterr()
    assert code == 1
    lines = out.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == [f for f in files if f != str(bad)]
    assert "broken.wav: not a readable audio file" in err
    assert "1 of 6 file(s) failed" in err
    hyps = [ln.split("\t")[1] for ln in lines]
    # the bundled model must really recognise the bundled (held-out speaker) clips
    assert score([t for _, t in rows], hyps).wer <= 0.35


def test_transcribe_json_and_txt_to_output_dir(tmp_path, capsys):
    (path, _), *_ = clip_rows()
    digit = TEST_DATA / "7_lucas_1.wav"  # 8 kHz WAV: resampled on the way in
    assert (
        main(
            [
                "transcribe",
                str(path),
                str(digit),
                "--format",
                "json",
                "--output-dir",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""
    doc = json.loads((tmp_path / "o" / f"{path.stem}.json").read_text())
    assert set(doc) >= {"text", "duration"} and doc["duration"] > 0.3
    assert json.loads((tmp_path / "o" / "7_lucas_1.json").read_text())["text"] != ""
    assert main(["transcribe", str(path), "--output-dir", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / f"{path.stem}.txt").read_text().strip() == doc["text"]


def test_evaluate_prints_wer_and_writes_report(an4_manifest, tmp_path, capsys):
    report = tmp_path / "r.tsv"
    assert main(["evaluate", str(an4_manifest), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "WER:" in out and "CER:" in out
    with open(report) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == len(clip_rows())
    refs = {t for _, t in clip_rows()}
    assert {r["reference"] for r in rows} == refs
    for r in rows:
        assert int(r["word_errors"]) == sum(
            int(r[k]) for k in ("substitutions", "deletions", "insertions")
        )


def test_missing_model_is_one_clear_error(tmp_path, capsys):
    (path, _), *_ = clip_rows()
    assert main(["transcribe", str(path), "--model", str(tmp_path / "x.pt")]) == 2
    assert "x.pt: no such model file" in capsys.readouterr().err


def test_info_and_demo(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] > 1_000_000 and info["vocabulary"][0] == "<blank>"
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for _, ref in clip_rows():
        assert f"reference:  {ref}" in out


def test_average_of_one_model_twice_is_that_model(tmp_path, capsys):
    import torch

    from asr.model.bundled import default_model_path
    from asr.model.checkpoint import load_model

    out = tmp_path / "avg.pt"
    bundled = default_model_path()
    assert main(["average", str(bundled), str(bundled), "--output", str(out)]) == 0
    assert "mean weights of 2 checkpoints" in capsys.readouterr().out
    a, b = load_model(bundled)[0].state_dict(), load_model(out)[0].state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)  # fp16 file
    assert main(["average", str(bundled), str(tmp_path / "no.pt"), "--output",
                 str(out)]) == 2  # fmt: skip
    assert "no such model file" in capsys.readouterr().err


@pytest.mark.slow
def test_console_entry_point_runs():
    (path, _), *_ = clip_rows()
    proc = subprocess.run(
        [sys.executable, "-m", "asr", "transcribe", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(path) + "\t")


def test_folders_manifests_and_stdin(tmp_path, an4_manifest, capsys, monkeypatch):
    import io
    import shutil

    nested = tmp_path / "audio" / "sub"
    nested.mkdir(parents=True)
    (path, _), *_ = clip_rows()
    shutil.copy(path, nested / path.name)
    shutil.copy(TEST_DATA / "3_jackson_0.wav", tmp_path / "audio" / "d.wav")
    (tmp_path / "audio" / "notes.txt").write_text("not audio")
    wav_bytes = (TEST_DATA / "7_lucas_1.wav").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(wav_bytes)))
    code = main(["transcribe", str(tmp_path / "audio"), str(an4_manifest), "-"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    names = [ln.split("\t")[0] for ln in lines]
    assert names[:2] == [str(tmp_path / "audio" / "d.wav"), str(nested / path.name)]
    assert len(names) == 2 + len(clip_rows()) + 1 and names[-1] == "-"


def test_all_formats_with_word_timestamps(tmp_path):
    (path, ref), *_ = [r for r in clip_rows() if " " in r[1]]
    assert (
        main(
            [
                "transcribe",
                str(path),
                "--format",
                "all",
                "--word-timestamps",
                "--output-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    stem = path.stem
    assert {p.suffix for p in tmp_path.iterdir()} == {
        ".txt",
        ".json",
        ".srt",
        ".vtt",
        ".tsv",
    }
    doc = json.loads((tmp_path / f"{stem}.json").read_text())
    assert set(doc) == {"text", "duration", "segments", "words"}
    assert [w["word"] for w in doc["words"]] == doc["text"].split()
    for w in doc["words"]:
        assert 0 <= w["start"] < w["end"] <= doc["duration"] + 0.05
        assert 0 <= w["confidence"] <= 1
    assert (tmp_path / f"{stem}.srt").read_text().startswith("1\n00:00:00,000 --> ")
    assert (tmp_path / f"{stem}.vtt").read_text().startswith("WEBVTT\n\n00:00.000")
    assert (tmp_path / f"{stem}.tsv").read_text().startswith("start\tend\ttext\n0\t")


def test_lm_build_tune_and_decode_with_the_result(tmp_path, an4_manifest, capsys):
    lm = tmp_path / "lm.arpa"
    assert (
        main(["lm", "build", str(an4_manifest), "--order", "2", "--output", str(lm)])
        == 0
    )
    best = tmp_path / "decoding.json"
    assert (
        main(
            [
                "tune-decoder",
                "--manifest",
                str(an4_manifest),
                "--lm",
                str(lm),
                "--lm-weights",
                "0,1",
                "--word-bonuses",
                "0,1",
                "--output",
                str(best),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("%\n") >= 4 and "best: lm_weight=" in out
    opts = json.loads(best.read_text())
    assert opts["decoder"] == "beam" and opts["lm"] == str(lm)
    report = tmp_path / "r.tsv"
    assert (
        main(
            [
                "evaluate",
                str(an4_manifest),
                "--decoding-config",
                str(best),
                "--report",
                str(report),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "decoder: beam" in out
    # an LM estimated on exactly these sentences must fix most errors
    wer = float(out.split("WER: ")[1].split("%")[0])
    assert wer <= 10.0


def test_nbest_alternatives_in_json(capsys):
    (path, _), *_ = [r for r in clip_rows() if len(r[1].split()) > 3]
    assert main(["transcribe", str(path), "--nbest", "3", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (segment,) = doc["segments"]
    alternatives = segment["alternatives"]
    assert len(alternatives) == 2
    assert all(a["text"] != segment["text"] for a in alternatives)
    assert alternatives[0]["score"] >= alternatives[1]["score"]
