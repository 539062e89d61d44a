from __future__ import annotations

import json

from asr.decode.decoder import WordTiming
from asr.output import render, timestamp, write_outputs
from asr.transcribe import Segment, Transcript

T = Transcript(
    "/x/talk.flac",
    duration=3725.5,
    text="enter seven stop",
    segments=[Segment(0.0, 1.25, "enter seven"), Segment(3721.0, 3725.5, "stop")],
    words=[
        WordTiming("enter", 0.1, 0.5, 0.9),
        WordTiming("seven", 0.6, 1.1, 0.8),
        WordTiming("stop", 3721.2, 3721.6, 0.95),
    ],
)


def test_timestamps():
    assert timestamp(3725.5, True, ",") == "01:02:05,500"
    assert timestamp(1.25, True, ",") == "00:00:01,250"
    assert timestamp(1.25, False, ".") == "00:01.250"
    assert timestamp(3725.5, False, ".") == "01:02:05.500"


def test_srt_vtt_tsv_txt():
    assert render(T, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,250\nenter seven\n\n"
        "2\n01:02:01,000 --> 01:02:05,500\nstop\n\n"
    )
    assert render(T, "vtt") == (
        "WEBVTT\n\n00:00.000 --> 00:01.250\nenter seven\n\n"
        "01:02:01.000 --> 01:02:05.500\nstop\n\n"
    )
    assert (
        render(T, "tsv")
        == "start\tend\ttext\n0\t1250\tenter seven\n3721000\t3725500\tstop\n"
    )
    assert render(T, "txt") == "enter seven stop\n"


def test_json_with_and_without_words():
    doc = json.loads(render(T, "json", words=True))
    assert doc["text"] == "enter seven stop" and doc["duration"] == 3725.5
    assert doc["segments"][1] == {"start": 3721.0, "end": 3725.5, "text": "stop"}
    assert doc["words"][2] == {
        "word": "stop",
        "start": 3721.2,
        "end": 3721.6,
        "confidence": 0.95,
    }
    assert "words" not in json.loads(render(T, "json"))


def test_write_outputs_names_files_by_stem(tmp_path):
    paths = write_outputs(T, tmp_path, ["txt", "srt", "json"])
    assert [p.name for p in paths] == ["talk.txt", "talk.srt", "talk.json"]
    assert (tmp_path / "talk.txt").read_text() == "enter seven stop\n"
