"""Speaker equalisation (asr/speaker_eq.py, `asr speaker-eq`) on noise and on
real FSDD and AN4 clips."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asr import speaker_eq as eq
from asr.audio import load_audio
from asr.data import Utterance, read_manifest, write_manifest
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
