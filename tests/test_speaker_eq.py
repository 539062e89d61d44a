"""Speaker equalisation (asr/speaker_eq.py, `asr speaker-eq`) on noise and on
real FSDD and AN4 clips."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio.files import load_audio
from asr.data import speaker_eq as eq
from asr.data.manifest import Utterance, read_manifest, write_manifest
from tests.conftest import TEST_DATA, clip_rows

RAMP = np.linspace(-6.0, 6.0, eq.BANDS)  # a tilt: 12 dB more at 3.8 kHz than 100 Hz


def real_clips() -> list:
    """The two FSDD clips of tests/data (8 kHz) and four bundled AN4 clips."""
    return sorted(TEST_DATA.glob("*.wav")) + [path for path, _ in clip_rows()[:4]]


def shape(levels: np.ndarray) -> np.ndarray:
    return levels - levels.mean()


def test_band_levels_measure_a_filter_on_noise():
    """Noise through a filter with a 12 dB tilt measures that tilt, band by band
    (the level itself is not a shape: both are compared without their mean)."""
    noise = np.random.default_rng(0).normal(0, 0.05, 16000)
    tilted = eq.spectral_gain(noise, eq.CENTRES_HZ, RAMP)
    diff = eq.band_levels(tilted) - eq.band_levels(noise)
    assert np.abs(shape(diff) - shape(RAMP)).max() < 0.6


def test_band_levels_skip_the_pauses_and_refuse_silence():
    """Only the speech frames count: a clip with a second of near-silence added
    measures within 0.5 dB of the clip alone. Silence and a clip shorter than
    one frame have no levels."""
    wav = load_audio(TEST_DATA / "7_lucas_1.wav")
    hiss = np.random.default_rng(1).normal(0, 1e-5, 16000)
    padded = np.concatenate([hiss, wav, hiss])
    assert np.abs(eq.band_levels(padded) - eq.band_levels(wav)).max() < 0.5
    assert eq.band_levels(np.zeros(16000)) is None
    assert eq.band_levels(wav[:300]) is None


def test_filter_gains_keep_the_level_and_smooth_and_limit_the_shape():
    reference = np.zeros(eq.BANDS)
    assert np.allclose(eq.filter_gains(reference - 7.0, reference), 0.0)  # level
    gains = eq.filter_gains(reference - RAMP, reference)
    assert gains.mean() == pytest.approx(0.0, abs=1e-9)
    inner = slice(eq.SMOOTH_BANDS, -eq.SMOOTH_BANDS)  # the moving average is exact
    assert np.allclose(gains[inner], RAMP[inner])
    spike = reference.copy()
    spike[10] = -30.0
    gains = eq.filter_gains(spike, reference, max_db=4.0)
    assert gains.max() == pytest.approx(4.0)  # 30 dB / 5 bands = 6, limited to 4
    assert np.count_nonzero(gains > 1.0) == eq.SMOOTH_BANDS
    sharp = eq.filter_gains(spike, reference, max_db=40.0, smooth_bands=1)
    assert np.allclose(sharp, shape(reference - spike))  # the spike, mean removed
    with pytest.raises(ValueError, match="odd"):
        eq.filter_gains(spike, reference, smooth_bands=4)


def manifest_of_two_speakers(tmp_path):
    """Speaker "plain": real clips as they are; "tilted": the same clips through
    the 12 dB tilt (another microphone)."""
    utts = []
    for k, path in enumerate(real_clips()):
        wav = load_audio(path)
        for speaker, audio in [("plain", wav), ("tilted", eq.equalise(wav, RAMP))]:
            out = tmp_path / "in" / f"{speaker}_{k}.wav"
            out.parent.mkdir(exist_ok=True)
            sf.write(out, audio, 16000, subtype="PCM_16")
            utts.append(Utterance(str(out), len(wav) / 16000, f"clip {k}", speaker))
    return utts


def test_equalise_manifest_takes_the_tilt_back_off(tmp_path):
    """With the plain speaker's spectrum as the reference, the tilted speaker's
    filter is the tilt reversed, the plain speaker's is flat, and afterwards the
    two speakers' spectra agree within 1 dB in every band (12 dB apart before)."""
    utts = manifest_of_two_speakers(tmp_path)
    levels, used = eq.speaker_levels(utts)
    assert used == set(range(len(utts)))
    before = shape(levels["tilted"] - levels["plain"])
    assert np.ptp(before) > 10.0
    out, unseen, gains = eq.equalise_manifest(utts, levels["plain"], tmp_path / "eq")
    assert unseen == []  # every clip was measured
    assert np.abs(gains["plain"]).max() < 0.5
    inner = slice(eq.SMOOTH_BANDS, -eq.SMOOTH_BANDS)
    assert np.allclose(gains["tilted"][inner], -shape(RAMP)[inner], atol=1.0)
    after, _ = eq.speaker_levels(out)
    assert np.abs(shape(after["tilted"] - after["plain"])).max() < 1.0
    for old, new in zip(utts, out):
        assert (new.text, new.speaker, new.duration) == (
            old.text,
            old.speaker,
            old.duration,
        )
        wav, rate = sf.read(new.audio_filepath)
        assert rate == 16000 and len(wav) == len(load_audio(old.audio_filepath))


def test_stats_clips_measure_a_few_and_leave_the_rest_unseen(tmp_path):
    utts = manifest_of_two_speakers(tmp_path)
    n = len(utts) // 2
    _, used = eq.speaker_levels(utts, stats_clips=2)
    assert len(used) == 4
    assert {utts[i].speaker for i in used} == {"plain", "tilted"}
    _, unseen, _ = eq.equalise_manifest(
        utts, np.zeros(eq.BANDS), tmp_path / "eq", stats_clips=2
    )
    assert len(unseen) == 2 * n - 4
    assert eq.speaker_levels(utts, stats_clips=2)[1] == used  # the same draw


def test_speaker_of_an_utterance_without_one_is_itself():
    u = Utterance("/a/b.wav", 1.0, "x")
    assert eq.speaker_of(u) == "</a/b.wav>"
    assert eq.speaker_of(Utterance("/a/b.wav", 1.0, "x", "ann")) == "ann"


def test_cli_reference_then_apply(tmp_path):
    """`asr speaker-eq reference` averages the speakers; `apply` writes the
    equalised clips, their manifest, the unmeasured clips and the gains."""
    utts = manifest_of_two_speakers(tmp_path)
    manifest = tmp_path / "m.jsonl"
    write_manifest(manifest, utts)
    ref = tmp_path / "ref.json"
    cli = [sys.executable, "-m", "asr.cli", "speaker-eq"]
    subprocess.run([*cli, "reference", str(manifest), "--output", str(ref)], check=True)
    doc = json.loads(ref.read_text())
    assert doc["n_speakers"] == 2 and len(doc["levels_db"]) == eq.BANDS
    levels, _ = eq.speaker_levels(utts)
    assert np.allclose(eq.load_reference(ref), eq.reference_levels(levels), atol=1e-3)
    out = tmp_path / "out"
    done = subprocess.run(
        [*cli, "apply", str(manifest), "--reference", str(ref), "--out", str(out)]
        + ["--stats-clips", "3"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "tilted" in done.stdout
    assert len(read_manifest(out / "manifest.jsonl")) == len(utts)
    assert len(read_manifest(out / "unseen.jsonl")) == len(utts) - 6
    gains = json.loads((out / "gains.json").read_text())
    # halfway between the two: each speaker gets half of the tilt, opposite ways
    tilt = np.array(gains["tilted"]) - np.array(gains["plain"])
    inner = slice(eq.SMOOTH_BANDS, -eq.SMOOTH_BANDS)
    assert np.allclose(tilt[inner], -shape(RAMP)[inner], atol=1.5)


def test_a_reference_of_other_bands_is_refused(tmp_path):
    path = tmp_path / "ref.json"
    eq.save_reference(path, np.zeros(eq.BANDS), 3)
    assert np.array_equal(eq.load_reference(path), np.zeros(eq.BANDS))
    doc = json.loads(path.read_text())
    doc["bands_hz"] = [50.0, 7000.0, 40]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="bands"):
        eq.load_reference(path)


def test_clips_keep_their_names_and_two_of_one_name_both_stay(tmp_path):
    """The equalised clip keeps its name, so reports keep the utterance ids; a
    second clip of the same name from another folder gets a hash added."""
    utts = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "7_lucas_1.wav"
        path.write_bytes((TEST_DATA / "7_lucas_1.wav").read_bytes())
        utts.append(Utterance(str(path), 0.5, "seven", "lucas"))
    out, _, _ = eq.equalise_manifest(utts, np.zeros(eq.BANDS), tmp_path / "eq")
    assert out[0].id == "7_lucas_1"
    assert out[1].id.startswith("7_lucas_1-") and out[1].id != out[0].id
    assert len(list((tmp_path / "eq" / "wav").glob("*.wav"))) == 2


def test_as_pcm16_rounds_as_a_written_file():
    """In memory, the equalised samples are those `apply` writes and a model
    reads back: within one 16-bit step of soundfile's own rounding."""
    wav = eq.equalise(load_audio(real_clips()[0]), RAMP)
    buf = io.BytesIO()
    sf.write(buf, wav, 16000, subtype="PCM_16", format="WAV")
    buf.seek(0)
    written, _ = sf.read(buf, dtype="float32")
    assert np.abs(eq.as_pcm16(wav) - written).max() <= 1 / 32768
    assert np.array_equal(eq.as_pcm16(np.array([2.0, -2.0])), [32767 / 32768, -1.0])


def test_file_levels_of_a_long_file_are_measured_in_blocks(tmp_path, monkeypatch):
    """A file longer than BLOCK_SECONDS is read block by block; the shape of its
    levels (what a filter follows) is the whole file's within 0.5 dB.
    Unreadable files have none."""
    wav = np.concatenate([load_audio(p) for p in real_clips()] * 3)
    path = tmp_path / "long.wav"
    sf.write(path, wav, 16000, subtype="PCM_16")
    whole = eq.band_levels(load_audio(path))
    monkeypatch.setattr(eq, "BLOCK_SECONDS", len(wav) / 16000 / 4)
    blocks = []
    real_band_levels = eq.band_levels
    monkeypatch.setattr(
        eq, "band_levels", lambda w: blocks.append(len(w)) or real_band_levels(w)
    )
    assert np.abs(shape(eq.file_levels(str(path)) - whole)).max() < 0.5
    assert len(blocks) >= 4
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    assert eq.file_levels(str(tmp_path / "bad.wav")) is None


def test_clip_gains_are_each_speakers_filter(tmp_path):
    utts = manifest_of_two_speakers(tmp_path)
    levels, _ = eq.speaker_levels(utts)
    gains = eq.clip_gains(utts, levels["plain"])
    _, _, by_speaker = eq.equalise_manifest(utts, levels["plain"], tmp_path / "eq")
    assert set(gains) == {u.audio_filepath for u in utts}
    for u in utts:
        assert np.array_equal(gains[u.audio_filepath], by_speaker[u.speaker])


def test_evaluate_and_transcribe_equalise_as_apply_does(tmp_path):
    """`asr evaluate --speaker-eq REF` decodes what `asr speaker-eq apply` would
    have written (the same hypotheses as evaluating its files); `asr transcribe
    --speaker-eq` measures all its inputs as one speaker."""
    from asr.cli.app import main

    utts = manifest_of_two_speakers(tmp_path)
    manifest, ref = tmp_path / "m.jsonl", tmp_path / "ref.json"
    write_manifest(manifest, utts)
    levels, _ = eq.speaker_levels(utts)
    eq.save_reference(ref, levels["tilted"] + RAMP, 1)  # far from both speakers
    out, _, _ = eq.equalise_manifest(utts, eq.load_reference(ref), tmp_path / "eq")
    written = tmp_path / "written.jsonl"
    write_manifest(written, out)
    reports = {}
    for name, args in [
        ("memory", [str(manifest), "--speaker-eq", str(ref)]),
        ("files", [str(written)]),
        ("raw", [str(manifest)]),
    ]:
        reports[name] = tmp_path / f"{name}.tsv"
        assert main(["evaluate", *args, "--report", str(reports[name])]) == 0

    def hyps(report):
        return [r.split("\t")[2] for r in report.read_text().splitlines()[1:]]

    assert hyps(reports["memory"]) == hyps(reports["files"])
    assert hyps(reports["memory"]) != hyps(reports["raw"])  # the filter did act
    # transcribe: one speaker's inputs, the same as apply on a one-speaker manifest
    tilted = [u for u in utts if u.speaker == "tilted"]
    one = eq.equalise_manifest(tilted, eq.load_reference(ref), tmp_path / "eq1")[0]
    res = tmp_path / "t"
    paths = [u.audio_filepath for u in tilted]
    assert main(["transcribe", *paths, "--speaker-eq", str(ref), "--format", "json",
                 "--output-dir", str(res / "memory")]) == 0  # fmt: skip
    assert main(["transcribe", *[u.audio_filepath for u in one], "--format", "json",
                 "--output-dir", str(res / "files")]) == 0  # fmt: skip
    for u in tilted:
        stem = Path(u.audio_filepath).stem
        memory = json.loads((res / "memory" / f"{stem}.json").read_text())["text"]
        files = json.loads((res / "files" / f"{stem}.json").read_text())["text"]
        assert memory == files


def test_transcriber_filters_every_piece_of_a_long_file(tmp_path):
    """A long file is cut into pieces; the filter sees each piece, under the
    file's name. A filter that silences the audio leaves no text."""
    from asr.model.bundled import default_model_path
    from asr.model.checkpoint import load_model
    from asr.transcribe import Transcriber

    wav = np.concatenate([load_audio(p) for p, _ in clip_rows()[:3]])
    path = tmp_path / "long.wav"
    sf.write(path, wav, 16000, subtype="PCM_16")
    model, tokenizer, _ = load_model(default_model_path())
    seen = []

    def silence(name, piece):
        seen.append((name, len(piece)))
        return np.zeros_like(piece)

    plain = Transcriber(model, tokenizer, max_segment_seconds=2.0)
    quiet = Transcriber(model, tokenizer, max_segment_seconds=2.0, audio_filter=silence)
    assert plain.transcribe_long(str(path)).text
    assert quiet.transcribe_long(str(path)).text == ""
    assert len(seen) > 1 and {n for n, _ in seen} == {str(path)}
    assert sum(n for _, n in seen) == len(wav)
