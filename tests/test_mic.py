"""asr.audio.mic: capture through PortAudio, tested on a file-fed ALSA capture device.

No microphone exists here. The device tests write a real speech clip as raw S16_LE,
define the ALSA PCM ``asr_file`` on it (``record_file_device_config``) and capture
in a subprocess, because ALSA_CONFIG_PATH must be set before PortAudio initialises.
The unit tests at the end run without PortAudio, on a stand-in sounddevice module.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import asr
from asr.audio import mic
from asr.audio.files import load_audio

ROOT = Path(__file__).resolve().parent.parent
CLIP = Path(asr.__file__).parent / "assets" / "clips" / "an108-mdxn-b.sph"

# Runs in a fresh interpreter whose environment names the file device's config.
CAPTURE_SCRIPT = r"""
import json, sys
import numpy as np
from asr.audio.mic import Microphone, default_input_rate, list_devices

out, frames, channels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
report = {"devices": list_devices(), "default_rate": default_input_rate("asr_file")}
got, n = [], 0
with Microphone(device="asr_file", channels=channels) as m:
    report["rate"] = m.rate
    for block in m.blocks(timeout=10):
        got.append(block)
        n += len(block)
        if n >= frames:
            break
report["closed"] = m.closed
report["overflows"] = m.overflows
report["dropped"] = m.dropped_blocks
report["block_lengths"] = sorted({len(b) for b in got})
report["dtypes"] = sorted({str(b.dtype) for b in got})
np.save(out, np.concatenate(got))
print(json.dumps(report))
"""


@pytest.fixture
def portaudio() -> None:
    """Skip unless sounddevice imports (PortAudio found) and ALSA is configured;
    in CI, which installs both (.ci/run), fail instead."""
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide PortAudio: {err}")
        pytest.skip(f"PortAudio/sounddevice not importable: {err}")
    if not Path(mic.ALSA_SYSTEM_CONFIG).is_file():
        pytest.skip(f"no ALSA system config at {mic.ALSA_SYSTEM_CONFIG}")


def device_env(tmp_path: Path, wav: np.ndarray, rate: int, channels: int = 1) -> dict:
    """Environment in which ``asr_file`` is an ALSA capture device playing ``wav``."""
    raw = mic.write_raw_s16(wav, tmp_path / "clip.raw")
    conf = tmp_path / "asr_file.conf"
    conf.write_text(mic.record_file_device_config(raw, rate, channels))
    env = mic.file_device_env(conf)
    env["PYTHONPATH"] = str(ROOT)
    return env


def capture_from_file(
    tmp_path: Path, wav: np.ndarray, rate: int, channels: int
) -> tuple[dict, np.ndarray]:
    """Play ``wav`` through the ``asr_file`` device; capture len(wav) frames."""
    out = tmp_path / "captured.npy"
    env = device_env(tmp_path, wav, rate, channels)
    proc = subprocess.run(
        [sys.executable, "-c", CAPTURE_SCRIPT, str(out), str(len(wav)), str(channels)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1]), np.load(out)


def test_file_device_captures_the_speech_clip_exactly(
    tmp_path: Path, portaudio: None
) -> None:
    wav = load_audio(CLIP)  # float32 16 kHz mono, exact int16 / 32768 values
    assert wav.dtype == np.float32 and len(wav) > 16000
    report, got = capture_from_file(tmp_path, wav, 16000, channels=1)

    assert "asr_file" in [d["name"] for d in report["devices"]]
    assert report["rate"] == report["default_rate"] == 16000
    assert report["dtypes"] == ["float32"] and got.ndim == 1
    assert report["block_lengths"] == [480]  # block_seconds=0.03 at 16 kHz
    assert report["closed"] and report["overflows"] == 0 and report["dropped"] == 0
    assert len(got) >= len(wav)
    # No leading offset, nothing dropped or repeated: sample k is file sample k.
    captured_ints = np.round(got[: len(wav)] * 32768.0).astype(np.int16)
    file_ints = np.fromfile(tmp_path / "clip.raw", dtype="<i2")
    assert np.array_equal(captured_ints, file_ints)
    assert np.array_equal(got[: len(wav)], wav)


def test_list_devices_reports_the_file_device_rate(
    tmp_path: Path, portaudio: None
) -> None:
    # An unusual native rate and a stereo file: the device reports that rate, the
    # microphone opens at it and averages the two channels exactly.
    rate = 22050
    ints = np.random.default_rng(0).integers(-32768, 32768, (rate // 2, 2))
    wav = (ints / 32768.0).astype(np.float32)
    report, got = capture_from_file(tmp_path, wav, rate, channels=2)

    (device,) = [d for d in report["devices"] if d["name"] == "asr_file"]
    assert device["default_samplerate"] == rate
    assert device["max_input_channels"] >= 2
    assert isinstance(device["index"], int)
    assert report["default_rate"] == report["rate"] == rate
    expected = (ints.sum(axis=1) / 65536.0).astype(np.float32)
    assert np.array_equal(got[: len(wav)], expected)


# --- without PortAudio ------------------------------------------------------------


@pytest.mark.parametrize("error", [ImportError, OSError])
def test_missing_sounddevice_raises_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    # ImportError: package not installed; OSError: sounddevice's "PortAudio library
    # not found" when libportaudio2 is missing.
    real_import = builtins.__import__

    def fake_import(name: str, *args, **kwargs):
        if name == "sounddevice":
            raise error("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    for call in (mic.list_devices, mic.default_input_rate, mic.Microphone):
        with pytest.raises(RuntimeError) as info:
            call()
        assert "apt-get install libportaudio2" in str(info.value)
        assert "pip install sounddevice" in str(info.value)
        assert isinstance(info.value, mic.MicrophoneError)


class FakeStatus:
    """Stands in for sounddevice.CallbackFlags with input_overflow set."""

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return "input overflow"


class FakeStream:
    """Stands in for sounddevice.InputStream: the test drives the callback."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.samplerate = float(kwargs["samplerate"])
        self.callback = kwargs["callback"]
        self.calls: list[str] = []

    def push(self, ints: list[list[int]], status: object = None) -> None:
        block = np.array(ints, dtype=np.int16)
        self.callback(block, len(block), None, status)

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    devices = [
        {"index": 0, "name": "Fake Mic", "max_input_channels": 2,
         "default_samplerate": 44100.0},
        {"index": 1, "name": "Speaker", "max_input_channels": 0,
         "default_samplerate": 48000.0},
    ]  # fmt: skip

    def query_devices(device=None, kind=None):
        if device is None and kind is None:
            return devices
        for d in devices:
            if device in (None, d["index"], d["name"]):
                return d
        raise ValueError(f"No input device matching {device!r}")

    module = types.ModuleType("sounddevice")
    module.PortAudioError = type("PortAudioError", (Exception,), {})
    module.query_devices = query_devices
    module.InputStream = FakeStream
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return module


def test_microphone_converts_averages_warns_and_stops(
    fake_sd: types.ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    assert mic.list_devices() == [
        {"index": 0, "name": "Fake Mic", "max_input_channels": 2,
         "default_samplerate": 44100}
    ]  # fmt: skip
    assert mic.default_input_rate(None) == 44100
    with mic.Microphone(channels=2, block_seconds=0.01) as m:
        stream = m._stream
        assert stream.kwargs["samplerate"] == 44100 and m.rate == 44100
        assert stream.kwargs["blocksize"] == 441
        assert stream.kwargs["dtype"] == "int16" and stream.kwargs["channels"] == 2
        assert stream.calls == ["start"]
        stream.push([[32767, -32768], [100, 300]])
        with caplog.at_level(logging.WARNING, logger="asr.audio.mic"):
            stream.push([[-16384, -16384]], FakeStatus())
        assert "input overflow" in caplog.text and m.overflows == 1
    assert stream.calls == ["start", "stop", "close"] and m.closed
    m.close()  # idempotent
    blocks = list(m)  # blocks captured before close() are still delivered
    assert [b.dtype for b in blocks] == [np.float32, np.float32]
    assert np.array_equal(blocks[0], np.array([-0.5, 200.0], np.float32) / 32768)
    assert np.array_equal(blocks[1], np.array([-0.5], np.float32))
    assert list(m.blocks(timeout=0.01)) == []


def test_microphone_timeout_drop_and_bad_devices(
    fake_sd: types.ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    with mic.Microphone(device="Fake Mic", rate=16000) as m:
        assert m.rate == 16000
        with pytest.raises(TimeoutError, match="Fake Mic"):
            next(m.blocks(timeout=0.01))
        m._max_blocks = 1
        with caplog.at_level(logging.WARNING, logger="asr.audio.mic"):
            m._stream.push([[1]])
            m._stream.push([[2]])  # nobody reads: dropped, with a warning
        assert m.dropped_blocks == 1 and "dropped 1" in caplog.text
        with caplog.at_level(logging.WARNING, logger="asr.audio.mic"):
            for k in range(120):  # a stalled reader: warned at 10 and 100, no flood
                m._stream.push([[k]])
        assert m.dropped_blocks == 121
        warned = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert [w.rsplit("dropped ", 1)[1] for w in warned] == [
            "1 so far",
            "10 so far",
            "100 so far",
        ]
    assert [b.tolist() for b in m] == [[1 / 32768]]
    for device in ("No Such Mic", "Speaker"):
        with pytest.raises(mic.MicrophoneError, match="'Fake Mic'"):
            mic.Microphone(device=device)
    with pytest.raises(ValueError):
        mic.Microphone(block_seconds=0)


def test_file_device_config_and_raw_writer(tmp_path: Path) -> None:
    wav = np.array([0.0, 0.5, -1.0, 1.0, -2.0, 1 / 32768], dtype=np.float32)
    path = mic.write_raw_s16(wav, tmp_path / "x.raw")
    assert (
        path.read_bytes()
        == np.array([0, 16384, -32768, 32767, -32768, 1], dtype="<i2").tobytes()
    )
    stereo = mic.write_raw_s16(np.array([[0.25, -0.25]]), tmp_path / "s.raw")
    assert np.fromfile(stereo, dtype="<i2").tolist() == [8192, -8192]

    text = mic.record_file_device_config(tmp_path / 'od"d.raw', 22050, channels=2)
    assert "pcm.asr_file {" in text and "type plug" in text and "type file" in text
    assert 'slave.pcm "null"' in text and "format S16_LE" in text
    assert "rate 22050" in text and "channels 2" in text
    assert f'infile "{tmp_path}/od\\"d.raw"' in text
    env = mic.file_device_env(tmp_path / "a.conf", env={"HOME": "/root"})
    assert env == {
        "HOME": "/root",
        "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{tmp_path}/a.conf",
    }


def run_cli_on_file_device(tmp_path: Path, wav: np.ndarray, args: list[str]):
    """`asr ARGS --device asr_file` with ``wav`` (16 kHz) as the microphone."""
    env = device_env(tmp_path, wav, 16000)
    duration = str(len(wav) / 16000)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "asr",
            *args,
            "--device",
            "asr_file",
            "--duration",
            duration,
            "--json",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (3e-4 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def test_microphone_to_command_end_to_end(tmp_path: Path, portaudio: None) -> None:
    stop = load_audio(CLIP.parent / "an238-mrjc2-b.sph")  # "stop"
    other = load_audio(CLIP)  # "enter forty one": not a command of the grammar
    wav = np.concatenate([quiet(0.6), stop, quiet(1.0, 1), other, quiet(1.0, 2)])
    proc = run_cli_on_file_device(
        tmp_path, wav, ["commands", "--grammar", str(ROOT / "examples/commands.yaml")]
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    fired = [x for x in lines if "command" in x]
    assert [x["command"] for x in fired] == ["stop"]
    assert 0.3 < fired[0]["start"] < 1.0 and fired[0]["confidence"] >= 0.5
    assert {"state": "stop"} in lines  # the emit action ran


def test_microphone_streaming_end_to_end(tmp_path: Path, portaudio: None) -> None:
    wav = np.concatenate([quiet(0.5), load_audio(CLIP), quiet(1.0, 1)])
    proc = run_cli_on_file_device(tmp_path, wav, ["stream"])
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(x) for x in proc.stdout.splitlines()]
    finals = [e for e in events if e["type"] == "final"]
    assert len(finals) == 1 and finals[0]["text"].startswith("enter")
    assert any(e["type"] == "partial" for e in events)


def test_enrol_records_the_prompted_words_from_the_microphone(
    tmp_path: Path, portaudio: None
) -> None:
    stop = load_audio(CLIP.parent / "an238-mrjc2-b.sph")  # "stop"
    wav = np.concatenate([quiet(0.6), stop, quiet(1.0, 1), stop, quiet(1.0, 2)])
    env = device_env(tmp_path, wav, 16000)
    out = tmp_path / "me"
    proc = subprocess.run(
        [sys.executable, "-m", "asr", "enrol", "--words", "stop", "--repeats", "2",
         "--out", str(out), "--device", "asr_file", "--duration", "5"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "say: stop  (2/2)" in proc.stderr
    lines = (out / "enrol.jsonl").read_text().splitlines()
    assert [json.loads(x)["text"] for x in lines] == ["stop", "stop"]
    for x in lines:  # each clip holds the word, not the pause before or after
        saved = load_audio(out / json.loads(x)["audio_filepath"])
        assert len(stop) * 0.5 < len(saved) < len(stop) + 16000


def test_list_devices_cli_shows_the_file_device(
    tmp_path: Path, portaudio: None
) -> None:
    env = device_env(tmp_path, quiet(0.5), 16000)
    proc = subprocess.run(
        [sys.executable, "-m", "asr", "stream", "--list-devices"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "asr_file" in proc.stdout and "16000 Hz" in proc.stdout


def test_ctrl_c_ends_a_live_stream_cleanly(tmp_path: Path) -> None:
    import signal
    import time

    import soundfile as sf

    wav = np.concatenate([quiet(0.5), load_audio(CLIP), quiet(20.0, 1)])
    path = tmp_path / "long.wav"
    sf.write(str(path), wav, 16000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "asr", "stream", "--input", str(path), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for the first final, in real time
        line = proc.stdout.readline()
        lines.append(line)
        if '"final"' in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert any('"final"' in x for x in lines)
