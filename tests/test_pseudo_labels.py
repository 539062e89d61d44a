"""scripts/pseudo_labels.py: a model's hypotheses as a manifest's transcripts."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest
from conftest import ROOT

from asr.cli.app import main as asr_main
from asr.data.manifest import Utterance, read_manifest, write_manifest

sys.path.insert(0, str(ROOT / "scripts"))
import pseudo_labels  # noqa: E402


def test_hypotheses_of_asr_evaluate_become_the_transcripts(an4_manifest, tmp_path):
    # transcripts no model would say: the output can only be the hypotheses
    manifest, report = tmp_path / "m.jsonl", tmp_path / "r.tsv"
    utts = [replace(u, text="qqq zzz") for u in read_manifest(an4_manifest)]
    write_manifest(manifest, utts)
    assert asr_main(["evaluate", str(manifest), "--report", str(report)]) == 0
    out = tmp_path / "pseudo.jsonl"
    assert pseudo_labels.main([str(manifest), str(report), "--output", str(out)]) == 0
    pseudo = read_manifest(out)
    rows = report.read_text().splitlines()[1:]
    hyps = [r.split("\t")[2] for r in rows]
    assert len(hyps) == len(utts) and any(hyps)
    assert [u.text for u in pseudo] == [h for h in hyps if h]
    assert [u.audio_filepath for u in pseudo] == [
        u.audio_filepath for u, h in zip(utts, hyps) if h
    ]


def test_skipped_and_empty_clips_are_left_out_and_order_is_checked():
    utts = [Utterance(f"/d/{n}.wav", 1.0, t, "s") for n, t in
            [("a", "one"), ("b", "two"), ("c", "three")]]  # fmt: skip
    rows = [{"id": "a", "hypothesis": "one"}, {"id": "c", "hypothesis": " "}]
    out, wrong = pseudo_labels.pseudo_labelled(utts, rows)  # b was unreadable
    assert [(u.id, u.text) for u in out] == [("a", "one")] and wrong == 0
    rows = [{"id": "b", "hypothesis": "six"}, {"id": "c", "hypothesis": "three"}]
    out, wrong = pseudo_labels.pseudo_labelled(utts, rows)
    assert [u.text for u in out] == ["six", "three"] and wrong == 1
    backwards = [{"id": "c", "hypothesis": "x"}, {"id": "a", "hypothesis": "y"}]
    with pytest.raises(ValueError, match="order"):
        pseudo_labels.pseudo_labelled(utts, backwards)


def test_a_manifest_without_transcripts_counts_nothing_wrong(tmp_path):
    utts = [Utterance("/d/a.wav", 1.0, "", "s")]
    out, wrong = pseudo_labels.pseudo_labelled(utts, [{"id": "a", "hypothesis": "go"}])
    assert out[0].text == "go" and wrong == 0
    write_manifest(tmp_path / "m.jsonl", out)
    assert read_manifest(tmp_path / "m.jsonl")[0].text == "go"
