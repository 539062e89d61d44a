"""The bad inputs people actually have (docs/robustness.md lists each and what
happens). Each works correctly or fails with one sentence naming the input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asr.audio.files import AudioError, load_audio
from asr.cli.app import main
from tests.conftest import ROOT, clip_rows

SPEECH = clip_rows()[1][0]  # "enter forty one"


def speech() -> np.ndarray:
    return load_audio(SPEECH)


def transcribe(path, capsys) -> tuple[int, str, str]:
    code = main(["transcribe", str(path)])
    out, err = capsys.readouterr()
    return code, out.strip().split("\t")[-1] if out.strip() else "", err


def test_ogg_opus_transcribes(tmp_path, capsys):
    path = tmp_path / "speech.opus"
    sf.write(str(path), speech(), 16000, format="OGG", subtype="OPUS")
    code, text, _ = transcribe(path, capsys)
    assert code == 0 and text.startswith("enter")


def test_m4a_needs_no_system_ffmpeg(tmp_path):
    # PyAV's wheel carries FFmpeg: a real m4a decodes with no ffmpeg on PATH, and a
    # broken one is FFmpeg's one clear sentence, not a request to install ffmpeg
    from tests.test_audio_formats import FORMATS, encode

    m4a = encode(tmp_path / "speech.m4a", speech(), FORMATS[0])
    broken = tmp_path / "broken.m4a"
    broken.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + bytes(200))
    code = (
        "import sys; from asr.audio.files import load_audio, AudioError\n"
        "print(len(load_audio(sys.argv[1])))\n"
        "try: load_audio(sys.argv[2])\n"
        "except AudioError as e: print(e)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(m4a), str(broken)],
        cwd=ROOT,
        env={"PATH": "/nonexistent", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    n_samples, error = proc.stdout.splitlines()
    assert abs(int(n_samples) - len(speech())) < 0.12 * 16000
    assert error.startswith(f"{broken}: not a readable audio file (")
    assert "FFmpeg: " in error and "install" not in error and not proc.stderr


def test_truncated_wav_transcribes_what_is_there(tmp_path, capsys):
    full = tmp_path / "full.wav"
    sf.write(str(full), speech(), 16000)
    cut = tmp_path / "cut.wav"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # header still claims the full length
    assert abs(len(load_audio(cut)) - len(speech()) * 2 // 3) < 100
    code, text, _ = transcribe(cut, capsys)
    assert code == 0 and text.startswith("enter")


@pytest.mark.parametrize("damage", ["truncate", "overwrite", "header"])
def test_corrupt_flac_gives_what_decodes_or_one_clear_error(tmp_path, damage):
    path = tmp_path / "bad.flac"
    sf.write(str(path), speech(), 16000)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "overwrite":
        data[100:400] = b"\xff" * 300
    else:
        data[8:40] = bytes(32)  # STREAMINFO zeroed: no rate, no channels
    path.write_bytes(bytes(data))
    try:
        wav = load_audio(path)
    except AudioError as err:
        assert str(err).startswith(f"{path}: ")
        return
    # libFLAC resynchronises on the next frame: the readable part comes back
    assert wav.dtype == np.float32 and np.isfinite(wav).all()
    assert 0 < len(wav) <= len(speech())


def test_unsupported_format_is_one_clear_error(tmp_path):
    path = tmp_path / "image.xyz"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(AudioError, match=r"image\.xyz: not a readable audio file"):
        load_audio(path)


def test_clipped_audio_transcribes(tmp_path, capsys):
    loud = np.clip(speech() * 40, -1, 1)  # hard-clipped, as from an overdriven mic
    assert np.mean(np.abs(loud) >= 0.999) > 0.05
    path = tmp_path / "clipped.wav"
    sf.write(str(path), loud, 16000, subtype="PCM_16")
    code, text, _ = transcribe(path, capsys)
    assert code == 0 and text  # recognisable speech, no crash
    over = tmp_path / "over.wav"  # float samples far outside [-1, 1]
    sf.write(str(over), speech() * 8, 16000, subtype="FLOAT")
    assert np.abs(load_audio(over)).max() > 1
    code, text, _ = transcribe(over, capsys)
    assert code == 0 and text.startswith("enter")


def test_all_silence_gives_an_empty_transcript(tmp_path, capsys):
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(32000, dtype=np.float32), 16000)
    assert main(["transcribe", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["text"] == "" and doc["duration"] == 2.0 and doc["segments"] == []


def write_lines(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_manifest_with_missing_files_bad_text_and_duplicates(tmp_path, capsys):
    rows = clip_rows()
    lines = [
        json.dumps({"audio_filepath": str(p), "duration": 1.0, "text": t}).encode()
        for p, t in rows[:3]
    ]
    lines.append(
        json.dumps(
            {
                "audio_filepath": str(tmp_path / "gone.wav"),
                "duration": 1.0,
                "text": "lost",
            }
        ).encode()
    )
    lines.append(lines[0])  # the same utterance twice
    lines.append(
        b'{"audio_filepath": "%s", "duration": 1.0, "text": "caf\xe9"}'
        % str(rows[3][0]).encode()
    )  # Latin-1, not UTF-8
    lines.append(
        json.dumps(
            {"audio_filepath": str(rows[4][0]), "duration": 1.0, "text": ""}
        ).encode()
    )  # empty transcript
    manifest = tmp_path / "m.jsonl"
    write_lines(manifest, lines)
    report = tmp_path / "r.tsv"
    code = main(["evaluate", str(manifest), "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 1  # one file failed ...
    assert "gone.wav: no such audio file (skipped)" in err
    assert "1 utterance id(s) occur more than once" in err
    with open(report) as f:
        scored = list(csv.DictReader(f, delimiter="\t"))
    assert len(scored) == 6  # ... and every other line was scored
    assert "utterances: 6 (failed: 1)" in out


def test_same_stem_in_two_folders_does_not_overwrite(tmp_path, capsys):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(clip_rows()[0][0], tmp_path / sub / "x.sph")
    shutil.copy(SPEECH, tmp_path / "b" / "x.sph")
    out = tmp_path / "out"
    assert (
        main(
            [
                "transcribe",
                str(tmp_path / "a" / "x.sph"),
                str(tmp_path / "b" / "x.sph"),
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "x.txt").read_text().strip() == "stop"
    assert (out / "x-1.txt").read_text().strip().startswith("enter")
    assert "written as x-1" in capsys.readouterr().err


def test_training_with_empty_and_non_utf8_transcripts(tmp_path):
    from asr.data.manifest import read_manifest
    from asr.train.trainer import fit
    from tests.test_training import tiny_config

    rows = clip_rows()
    lines = [
        json.dumps({"audio_filepath": str(p), "duration": 1.0, "text": t}).encode()
        for p, t in rows[:3]
    ]
    lines.append(
        b'{"audio_filepath": "%s", "duration": 1.0, "text": "\xff\xfe"}'
        % str(rows[3][0]).encode()
    )
    lines.append(
        json.dumps(
            {"audio_filepath": str(rows[4][0]), "duration": 1.0, "text": ""}
        ).encode()
    )
    manifest = tmp_path / "train.jsonl"
    write_lines(manifest, lines)
    assert len(read_manifest(manifest)) == 5
    best = fit(tiny_config(manifest, tmp_path / "run", 1, augment=False))
    assert best.is_file()


def test_empty_stdin_is_one_clear_error(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["transcribe", "-"]) == 1
    assert "<stdin>: no audio data received" in capsys.readouterr().err
