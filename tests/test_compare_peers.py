"""scripts/compare_peers.py: both systems score the same readable files, this
project's figures are asr evaluate's, PocketSphinx's words are scored fairly."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile as sf

from asr.cli.app import main as asr_main
from asr.data.manifest import Utterance, write_manifest
from asr.decode.metrics import score
from scripts.compare_peers import main, pcm16, sphinx_words
from tests.conftest import TEST_DATA, clip_rows

ASR_ROW = "asr default_bilstm.pt (greedy)"
FSDD = [
    (TEST_DATA / "3_jackson_0.wav", "three"),
    (TEST_DATA / "7_lucas_1.wav", "seven"),
]


def _manifest(path, rows, bad=()) -> list[float]:
    """Write ``rows`` (audio path, text) and ``bad`` paths as a manifest; the
    readable files' durations in seconds."""
    durations = [sf.info(str(p)).duration for p, _ in rows]
    utts = [Utterance(str(p), d, t) for (p, t), d in zip(rows, durations)]
    utts[1:1] = [Utterance(str(p), 1.0, "lost words") for p in bad]
    write_manifest(path, utts)
    return durations


@pytest.fixture(scope="module")
def peer_run(tmp_path_factory):
    """Both systems on the AN4 clips (plus a missing and an empty file) and on
    two FSDD digits: (exit code, report, stdout lines, durations per set)."""
    pytest.importorskip("pocketsphinx")
    tmp = tmp_path_factory.mktemp("peers")
    (tmp / "empty.wav").write_bytes(b"")
    clips = _manifest(
        tmp / "an4.jsonl", clip_rows(), [tmp / "no.wav", tmp / "empty.wav"]
    )
    digits = _manifest(tmp / "fsdd.jsonl", FSDD)
    report = tmp / "peers.json"
    argv = [str(tmp / "an4.jsonl"), str(tmp / "fsdd.jsonl"), "--report", str(report)]
    return main(argv), json.loads(report.read_text()), [clips, digits]


def _rows(report_set: dict) -> dict[str, dict]:
    return {r["system"]: r for r in report_set["rows"]}


def test_sphinx_words_drop_fillers_and_pronunciation_marks():
    assert sphinx_words("<s> [NOISE] yeah(2) <sil> t ++UH++ </s>") == "yeah t"
    assert sphinx_words("twenty(2) third") == "twenty third"
    assert sphinx_words("") == ""


def test_pcm16_scales_and_clips():
    pcm = np.frombuffer(pcm16(np.array([0.0, 0.5, -1.0, 2.0], np.float32)), "<i2")
    assert pcm.tolist() == [0, 16383, -32767, 32767]


def test_both_systems_score_the_same_readable_files(peer_run):
    code, report, durations = peer_run
    assert code == 1  # files were skipped
    an4, fsdd = report["sets"]
    assert len(an4["skipped"]) == 2 and "no.wav" in an4["skipped"][0]
    assert "empty" in an4["skipped"][1] and not fsdd["skipped"]
    assert [u["id"] for u in an4["utterances"]] == [p.stem for p, _ in clip_rows()]
    for s, secs in zip(report["sets"], durations):
        rows = _rows(s)
        assert set(rows) == {ASR_ROW, "pocketsphinx en-us"}
        for row in rows.values():
            assert row["n_files"] == len(secs)
            assert row["audio_minutes"] == pytest.approx(sum(secs) / 60, abs=1e-4)
            assert row["x_real_time"] == pytest.approx(
                sum(secs) / row["decode_seconds"], rel=1e-3
            )
            assert row["startup_seconds"] > 0
    pooled = {r["system"]: r for r in report["pooled"]}
    assert pooled[ASR_ROW]["n_files"] == 7
    secs = sum(durations[0]) + sum(durations[1])
    assert pooled["pocketsphinx en-us"]["audio_minutes"] == pytest.approx(secs / 60)


def test_pocketsphinx_hypotheses_are_scored_against_the_references(peer_run):
    _, report, _ = peer_run
    for s in report["sets"]:
        refs = [u["reference"] for u in s["utterances"]]
        hyps = [u["hypotheses"]["pocketsphinx en-us"] for u in s["utterances"]]
        assert all(hyps)
        assert not any(re.search(r"[<\[(]", h) for h in hyps)
        ps = _rows(s)["pocketsphinx en-us"]
        assert ps["wer"] == pytest.approx(100 * score(refs, hyps).wer)
        assert ps["cer"] == pytest.approx(100 * score(refs, hyps).cer)
    words = {u["id"]: u["hypotheses"] for u in report["sets"][0]["utterances"]}
    # a clear one any general-English recogniser gets right
    assert words["cen6-mnjl-b"]["pocketsphinx en-us"] == "one five two one three"


def test_printed_tables(capsys, tmp_path):
    pytest.importorskip("pocketsphinx")
    _manifest(tmp_path / "one.jsonl", FSDD)
    assert main([str(tmp_path / "one.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "one.jsonl: 2 files" in out and "pooled" not in out
    assert re.search(r"\| pocketsphinx en-us \| [\d.]+% \| [\d.]+% \| [\d.]+x \|", out)


def test_project_figures_are_asr_evaluates(tmp_path, capsys):
    manifest = tmp_path / "mixed.jsonl"
    _manifest(manifest, clip_rows() + FSDD, [tmp_path / "gone.flac"])
    flags = ["--pad-ms", "0", "--decoder", "beam", "--beam-size", "8"]
    report = tmp_path / "r.json"
    code = main([str(manifest), "--no-pocketsphinx", "--report", str(report), *flags])
    assert code == 1
    got = json.loads(report.read_text())
    assert got["settings"]["decoding"]["pad_ms"] == 0
    (row,) = got["sets"][0]["rows"]
    assert row["system"] == "asr default_bilstm.pt (beam)" and row["n_files"] == 7
    capsys.readouterr()
    asr_main(["evaluate", str(manifest), "--report", str(tmp_path / "e.tsv"), *flags])
    found = re.search(r"WER: ([\d.]+)%  CER: ([\d.]+)%", capsys.readouterr().out)
    wer, cer = found.groups()
    assert f"{row['wer']:.2f}" == wer and f"{row['cer']:.2f}" == cer
