"""Live audio capture through PortAudio (the ``sounddevice`` package).

This is the only module of the project that opens audio devices. ``sounddevice`` is
imported lazily, inside the functions, so ``import asr.mic`` works on machines
without PortAudio; using a device there raises a ``MicrophoneError`` (a
``RuntimeError``) that names what to install.

Capture is done in 16-bit integers (``int16``) and converted here to float32 in
[-1, 1) by dividing by 32768, the same conversion PortAudio itself applies. On a
real microphone that is what the hardware delivers anyway; on the file-backed ALSA
device below it is required: any ALSA format or channel conversion plugin (which
ALSA inserts when a client asks for float32, or for another channel count) stacked
on the ALSA ``file`` plugin drops samples, whereas int16 at the file's channel count
and rate passes through untouched and returns the file's samples exactly, from the
first sample on.

Machines without a microphone (tests, CI, demos) capture from a file through an
ALSA PCM built by ``record_file_device_config``: it plays the raw S16_LE file as a
capture device named ``asr_file`` whose native rate is the file's rate. Notes:

* ALSA reads the config named by ``ALSA_CONFIG_PATH`` when PortAudio initialises,
  i.e. when ``sounddevice`` is first imported in the process: set it before that,
  for example by starting a subprocess with ``file_device_env(...)`` as its env.
* The device is not paced by a clock: it delivers audio as fast as it is read.
* After the end of the file it keeps delivering the last ALSA buffer's samples
  again; stop reading after ``len(file)`` samples.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FILE_DEVICE_NAME = "asr_file"
"""Name of the capture PCM that ``record_file_device_config`` defines."""

ALSA_SYSTEM_CONFIG = "/usr/share/alsa/alsa.conf"
"""The system ALSA config that ``ALSA_CONFIG_PATH`` must keep in front."""

INSTALL_HINT = (
    "install PortAudio and the sounddevice package: "
    "`apt-get install libportaudio2` and `pip install sounddevice`"
)

_CAPTURE_DTYPE = "int16"
_INT16_SCALE = np.float32(1.0 / 32768.0)
_MAX_QUEUED_SECONDS = 60.0  # blocks beyond this, unread, are dropped with a warning
_SENTINEL = None


class MicrophoneError(RuntimeError):
    """Audio capture is unavailable: PortAudio missing, no such device, open failed."""


def _sounddevice() -> ModuleType:
    """Import ``sounddevice``; a MicrophoneError naming the installs if it can't."""
    try:
        import sounddevice  # lazily: it needs PortAudio, which only the mic uses
    except (ImportError, OSError) as err:  # OSError: "PortAudio library not found"
        raise MicrophoneError(
            f"audio capture is unavailable ({err}); {INSTALL_HINT}"
        ) from err
    return sounddevice


def list_devices() -> list[dict]:
    """Input-capable audio devices, as PortAudio sees them.

    Returns one dict per device with keys ``index`` (int), ``name`` (str),
    ``max_input_channels`` (int) and ``default_samplerate`` (int, Hz: the device's
    native rate). Raises MicrophoneError when PortAudio/sounddevice is missing.
    """
    sd = _sounddevice()
    devices = []
    for info in sd.query_devices():
        if int(info["max_input_channels"]) > 0:
            devices.append(
                {
                    "index": int(info["index"]),
                    "name": str(info["name"]),
                    "max_input_channels": int(info["max_input_channels"]),
                    "default_samplerate": int(round(info["default_samplerate"])),
                }
            )
    return devices


def default_input_rate(device: int | str | None = None) -> int:
    """The native sample rate (Hz) of input ``device`` (None: the default input).

    ``device`` is a PortAudio index or (part of) a device name, as in
    ``list_devices``. Raises MicrophoneError if there is no such input device.
    """
    return int(round(_input_device_info(_sounddevice(), device)["default_samplerate"]))


def _input_device_info(sd: ModuleType, device: int | str | None) -> dict[str, Any]:
    try:
        info = dict(sd.query_devices(device, kind="input"))
        if int(info["max_input_channels"]) < 1:
            raise ValueError(f"{info['name']!r} has no input channels")
        return info
    except (ValueError, sd.PortAudioError) as err:
        names = ", ".join(repr(d["name"]) for d in list_devices()) or "none"
        which = "the default input device" if device is None else repr(device)
        raise MicrophoneError(
            f"no usable audio input {which} ({err}); input devices: {names}"
        ) from None


class Microphone:
    """A running capture stream that yields float32 mono blocks.

    ``Microphone(device=None, rate=None, block_seconds=0.03, channels=1)`` opens and
    starts a ``sounddevice.InputStream`` on ``device`` (index or name; None: the
    default input) at ``rate`` Hz (None: the device's native rate), ``channels``
    channels, in blocks of ``block_seconds``. Iterating (or ``blocks()``) yields
    each block as a float32 numpy array of shape (frames,), channels averaged,
    until ``close()``; ``rate`` is the actual capture rate. Use it as a context
    manager so that the stream is always closed::

        with Microphone() as mic:
            for block in mic:  # float32, mono, mic.rate Hz
                ...

    Input overflows and other PortAudio status flags are logged as warnings, never
    raised. Blocks that nobody reads pile up in memory for at most
    ``_MAX_QUEUED_SECONDS`` seconds; later ones are dropped, with a warning.
    """

    def __init__(
        self,
        device: int | str | None = None,
        rate: int | None = None,
        block_seconds: float = 0.03,
        channels: int = 1,
    ) -> None:
        if not block_seconds > 0:
            raise ValueError(f"block_seconds must be > 0, got {block_seconds}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        sd = _sounddevice()
        info = _input_device_info(sd, device)
        self.device: int = int(info["index"])
        self.name: str = str(info["name"])
        self.channels = int(channels)
        self.block_seconds = float(block_seconds)
        self.rate: int = (
            int(rate) if rate is not None else int(round(info["default_samplerate"]))
        )
        self.overflows = 0  # callbacks that reported a status flag
        self.dropped_blocks = 0  # blocks dropped because nobody read them
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._max_blocks = max(1, math.ceil(_MAX_QUEUED_SECONDS / self.block_seconds))
        self._lock = threading.Lock()
        self._closed = False
        blocksize = max(1, round(self.block_seconds * self.rate))
        try:
            self._stream = sd.InputStream(
                device=self.device,
                samplerate=self.rate,
                channels=self.channels,
                dtype=_CAPTURE_DTYPE,
                blocksize=blocksize,
                callback=self._callback,
            )
        except sd.PortAudioError as err:
            raise MicrophoneError(
                f"cannot open audio input {self.name!r} at {self.rate} Hz, "
                f"{self.channels} channel(s): {err}"
            ) from None
        try:
            self._stream.start()
        except sd.PortAudioError as err:
            self._stream.close()
            raise MicrophoneError(
                f"cannot start audio input {self.name!r}: {err}"
            ) from None
        self.rate = int(round(self._stream.samplerate))

    def _callback(
        self, indata: np.ndarray, frames: int, time: Any, status: Any
    ) -> None:
        """PortAudio's thread: convert the block and queue it (never raises)."""
        if status:
            self.overflows += 1
            log.warning("audio input %r: %s", self.name, status)
        if indata.shape[1] == 1:
            block = indata[:, 0].astype(np.float32)
        else:
            block = indata.astype(np.float32).mean(axis=1, dtype=np.float32)
        block *= _INT16_SCALE
        if self._queue.qsize() >= self._max_blocks:
            self.dropped_blocks += 1
            n = self.dropped_blocks  # warn at 1, 10, 100, ... dropped: not a flood
            if n == 10 ** (len(str(n)) - 1):
                log.warning(
                    "audio input %r: blocks are not being read; dropped %d so far",
                    self.name,
                    self.dropped_blocks,
                )
            return
        self._queue.put(block)

    def blocks(self, timeout: float | None = None) -> Iterator[np.ndarray]:
        """Yield captured float32 mono blocks until the microphone is closed.

        Blocks captured before ``close()`` are still yielded. ``timeout``: seconds
        to wait for each block (None: forever); a device that delivers nothing for
        that long raises TimeoutError.
        """
        while True:
            if self._closed and self._queue.empty():
                return
            try:
                block = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(
                    f"audio input {self.name!r} delivered nothing for {timeout} s"
                ) from None
            if block is _SENTINEL:
                self._queue.put(_SENTINEL)  # wake any other reader too
                return
            yield block

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.blocks()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has been called."""
        return self._closed

    def close(self) -> None:
        """Stop and close the stream; iteration ends after the queued blocks.

        Safe to call more than once.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._stream.stop()
        finally:
            self._stream.close()
            self._queue.put(_SENTINEL)

    def __enter__(self) -> Microphone:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"Microphone(device={self.device} {self.name!r}, rate={self.rate}, "
            f"channels={self.channels}, {state})"
        )


def write_raw_s16(wav: np.ndarray, path: str | os.PathLike) -> Path:
    """Write float audio in [-1, 1] to ``path`` as raw S16_LE (no header).

    ``wav``: shape (frames,) for mono or (frames, channels), written interleaved.
    Samples are scaled by 32768, rounded and clipped to int16, so audio that came
    from 16-bit files (like ``asr.audio.load_audio`` output of them) is written
    back bit-exactly. Returns the path.
    """
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim not in (1, 2):
        raise ValueError(
            f"wav must be (frames,) or (frames, channels), got {wav.shape}"
        )
    ints = np.clip(np.round(wav * 32768.0), -32768, 32767).astype("<i2")
    path = Path(path)
    path.write_bytes(ints.tobytes())
    return path


def record_file_device_config(
    raw_path: str | os.PathLike, rate: int, channels: int = 1
) -> str:
    """ALSA config text defining capture PCM ``asr_file`` that plays ``raw_path``.

    ``raw_path`` holds raw S16_LE audio (see ``write_raw_s16``), ``channels``
    interleaved, at ``rate`` Hz. The ALSA ``file`` plugin feeds the file to the
    capture side of a ``null`` PCM; the ``plug`` on top pins the format, rate and
    channel count, and because PortAudio probes rates with resampling disabled it
    reports ``rate`` as the device's native rate. Capture it with
    ``Microphone(device="asr_file", channels=channels)`` to get the file's samples
    exactly (see the module docstring for the limits). Write the text to a file
    and put that file in ``ALSA_CONFIG_PATH`` (``file_device_env``).
    """
    if int(rate) <= 0 or int(channels) < 1:
        raise ValueError(f"bad rate {rate} or channels {channels}")
    infile = _alsa_string(os.path.abspath(os.fspath(raw_path)))
    return f"""# Capture device {FILE_DEVICE_NAME!r}: a raw S16_LE file (asr.audio.mic).
pcm.{FILE_DEVICE_NAME} {{
    type plug
    slave {{
        pcm {{
            type file
            slave.pcm "null"
            file "/dev/null"
            infile {infile}
            format "raw"
        }}
        format S16_LE
        rate {int(rate)}
        channels {int(channels)}
    }}
    hint.description "asr: raw S16_LE file as a microphone"
}}
"""


def file_device_env(
    config_path: str | os.PathLike, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) whose ALSA config adds a file.

    Sets ``ALSA_CONFIG_PATH`` to the system ``alsa.conf`` followed by
    ``config_path`` (e.g. a file holding ``record_file_device_config``). It takes
    effect in a process that imports ``sounddevice`` after it is set: pass it as
    the environment of a subprocess.
    """
    out = dict(os.environ if env is None else env)
    out["ALSA_CONFIG_PATH"] = f"{ALSA_SYSTEM_CONFIG}:{os.path.abspath(config_path)}"
    return out


def _alsa_string(text: str) -> str:
    """``text`` as a double-quoted ALSA config string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
