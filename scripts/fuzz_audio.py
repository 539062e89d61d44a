"""Fuzz the audio loader with mutated real files.

    python scripts/fuzz_audio.py --iterations 2000 --seed 0 [--workers 2]
    python scripts/fuzz_audio.py --seed 0 --iteration 123 [--save mutant.wav]

Starts from the bundled AN4 clips (NIST SPHERE), the 8 kHz test WAVs and
re-encodings of one clip (WAV PCM_16, WAV FLOAT, FLAC, OGG Vorbis, MP3), applies
1-3 random mutations (bit flips, byte overwrites, truncation, header field
corruption, chunk duplication, inserted bytes, zero-filled regions, splices of two
files), writes each mutant to a temporary file and calls ``load_audio`` on it (and,
for every ``--stream-every``-th mutant, ``stream_audio`` and ``decode_audio_bytes``).

The only allowed outcomes are a finite float32 1-D waveform (finite float32
blocks for ``stream_audio``) or ``asr.audio.AudioError`` whose message names the
file (``<stdin>`` for ``decode_audio_bytes``). Anything else is a failure: another
exception type, a wrong waveform, a crash of the process (e.g. a segfault in a C
library) or a hang (over ``--timeout`` seconds per file). Each mutant is checked
in a worker process with a watchdog, so a crash or a hang is caught and the worker
replaced. Each mutant depends only on (seed, iteration): a failure is printed with
the command that reproduces it. Exits 1 if there was any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import random
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIPS = ROOT / "asr" / "assets" / "clips"
TEST_WAVS = ROOT / "tests" / "data"
ALLOWED = ("ok", "audio_error")
MEMORY_LIMIT = 4 << 30  # address space of a worker: a huge allocation fails fast

INTERESTING_32 = [0, 1, 2, 3, 4, 8, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 8000]
INTERESTING_32 += [16000, 44100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
INTERESTING_16 = [0, 1, 2, 3, 4, 6, 8, 16, 24, 32, 64, 0x7FFF, 0x8000, 0xFFFF]
NIST_VALUES = ["0", "1", "2", "3", "4", "-1", "8", "24", "32", "1024", "8000"]
NIST_VALUES += ["2147483647", "-2147483648", "4294967296", "99999999999999999999"]
NIST_VALUES += ["ulaw", "alaw", "pcm", "pcm,embedded-shorten-v2.00", "10", "01"]
NIST_VALUES += ["1.5", "", "x", "0123", "-s3 pcm", "-r 1e9", "-i"]


# ---------------------------------------------------------------- seed files


def seed_files() -> list[tuple[str, bytes]]:
    """(name, bytes) of every starting file; deterministic from run to run."""
    import soundfile as sf

    seeds = [(p.name, p.read_bytes()) for p in sorted(CLIPS.glob("*.sph"))]
    seeds += [(p.name, p.read_bytes()) for p in sorted(TEST_WAVS.glob("*.wav"))]
    clip = sorted(CLIPS.glob("*.sph"))[0]
    data, rate = sf.read(str(clip), dtype="int16")
    for ext, fmt, subtype in [
        ("wav", "WAV", "PCM_16"),
        ("float.wav", "WAV", "FLOAT"),
        ("flac", "FLAC", "PCM_16"),
        ("ogg", "OGG", "VORBIS"),
        ("mp3", "MP3", "MPEG_LAYER_III"),
    ]:
        buf = io.BytesIO()
        sf.write(buf, data, rate, format=fmt, subtype=subtype)
        blob = buf.getvalue()
        if fmt == "OGG":  # libsndfile picks a random stream serial number
            blob = _ogg_fix_serial(blob, 0x41535221)
        seeds.append((f"{clip.stem}.{ext}", blob))
    return seeds


# ------------------------------------------------------------ format helpers


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each well-formed Ogg page."""
    pages, pos = [], data.find(b"OggS")
    while pos >= 0 and pos + 27 <= len(data):
        nsegs = data[pos + 26]
        if pos + 27 + nsegs > len(data):
            break
        end = pos + 27 + nsegs + sum(data[pos + 27 : pos + 27 + nsegs])
        pages.append((pos, min(end, len(data))))
        pos = data.find(b"OggS", end)
    return pages


def _ogg_recrc(buf: bytearray, start: int, end: int) -> None:
    buf[start + 22 : start + 26] = b"\0\0\0\0"
    buf[start + 22 : start + 26] = struct.pack("<I", _ogg_crc(bytes(buf[start:end])))


def _ogg_fix_serial(data: bytes, serial: int) -> bytes:
    buf = bytearray(data)
    for start, end in _ogg_pages(data):
        buf[start + 14 : start + 18] = struct.pack("<I", serial)
        _ogg_recrc(buf, start, end)
    return bytes(buf)


def _riff_chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, id, size) of each RIFF chunk after the WAVE tag."""
    chunks, pos = [], 12
    while pos + 8 <= len(data) and len(chunks) < 64:
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append((pos, data[pos : pos + 4], size))
        pos += 8 + size + (size & 1)
    return chunks


def _put_bits(buf: bytearray, bit: int, width: int, value: int) -> None:
    """Write ``value`` into ``width`` bits at big-endian bit offset ``bit``."""
    for k in range(width):
        pos, shift = divmod(bit + k, 8)
        if pos >= len(buf):
            return
        mask = 0x80 >> shift
        if (value >> (width - 1 - k)) & 1:
            buf[pos] |= mask
        else:
            buf[pos] &= ~mask & 0xFF


def _kind(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:7] == b"NIST_1A":
        return "nist"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] >= 0xE0):
        return "mp3"
    return "other"


# ----------------------------------------------------------------- mutations


def _u32(rng: random.Random) -> int:
    if rng.random() < 0.7:
        return rng.choice(INTERESTING_32)
    return rng.getrandbits(rng.choice([8, 16, 24, 32]))


def _u16(rng: random.Random) -> int:
    return rng.choice(INTERESTING_16) if rng.random() < 0.7 else rng.getrandbits(16)


def bit_flip(buf: bytearray, rng: random.Random, _seeds) -> str:
    n = rng.randint(1, 8)
    for _ in range(n):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return f"bit_flip x{n}"


def byte_overwrite(buf: bytearray, rng: random.Random, _seeds) -> str:
    n = rng.randint(1, 16)
    for _ in range(n):
        buf[rng.randrange(len(buf))] = rng.choice(
            [0, 0xFF, 0x7F, 0x80, rng.randrange(256)]
        )
    return f"byte_overwrite x{n}"


def truncate(buf: bytearray, rng: random.Random, _seeds) -> str:
    at = (
        rng.randrange(len(buf))
        if rng.random() < 0.5
        else rng.randrange(min(len(buf), 2048))
    )
    del buf[at:]
    return f"truncate@{at}"


def zero_fill(buf: bytearray, rng: random.Random, _seeds) -> str:
    start = rng.randrange(len(buf))
    n = rng.randint(1, max(1, min(len(buf) // 4, 4096)))
    buf[start : start + n] = bytes(len(buf[start : start + n]))
    return f"zero_fill@{start}+{n}"


def insert_random(buf: bytearray, rng: random.Random, _seeds) -> str:
    at = rng.randrange(len(buf) + 1)
    n = rng.randint(1, 256)
    buf[at:at] = rng.randbytes(n)
    return f"insert_random@{at}+{n}"


def duplicate_chunk(buf: bytearray, rng: random.Random, _seeds) -> str:
    kind = _kind(bytes(buf))
    if kind == "wav" and (chunks := _riff_chunks(bytes(buf))):
        pos, cid, size = rng.choice(chunks)
        chunk = bytes(buf[pos : pos + 8 + size + (size & 1)])
        at = rng.choice([pos + len(chunk), 12, len(buf)])
        buf[at:at] = chunk
        return f"duplicate_chunk {cid!r}@{pos}->{at}"
    if kind == "ogg" and (pages := _ogg_pages(bytes(buf))):
        start, end = rng.choice(pages)
        page = bytes(buf[start:end])
        at = rng.choice([end, len(buf)])
        buf[at:at] = page
        return f"duplicate_page@{start}->{at}"
    start = rng.randrange(len(buf))
    region = bytes(buf[start : start + rng.randint(1, 2048)])
    at = rng.randrange(len(buf) + 1)
    buf[at:at] = region
    return f"duplicate_region@{start}+{len(region)}->{at}"


def splice(buf: bytearray, rng: random.Random, seeds) -> str:
    name, other = rng.choice(seeds)
    cut, cut_other = rng.randrange(len(buf) + 1), rng.randrange(len(other))
    buf[cut:] = other[cut_other:]
    return f"splice@{cut} {name}@{cut_other}"


def corrupt_header(buf: bytearray, rng: random.Random, _seeds) -> str:
    kind = _kind(bytes(buf))
    if kind == "wav":
        return _corrupt_wav(buf, rng)
    if kind == "nist":
        return _corrupt_nist(buf, rng)
    if kind == "flac":
        return _corrupt_flac(buf, rng)
    if kind == "ogg":
        return _corrupt_ogg(buf, rng)
    if kind == "mp3":
        return _corrupt_mp3(buf, rng)
    at = rng.randrange(min(len(buf), 64))
    value = _u32(rng)
    buf[at : at + 4] = struct.pack("<I", value)[: len(buf[at : at + 4])]
    return f"header_u32@{at}={value:#x}"


def _corrupt_wav(buf: bytearray, rng: random.Random) -> str:
    chunks = _riff_chunks(bytes(buf))
    fmt = [c for c in chunks if c[1] == b"fmt "]
    choice = rng.random()
    if fmt and choice < 0.6:
        pos = fmt[0][0]
        name, off, width = rng.choice(
            [
                ("format_tag", 8, 2),
                ("channels", 10, 2),
                ("sample_rate", 12, 4),
                ("byte_rate", 16, 4),
                ("block_align", 20, 2),
                ("bits", 22, 2),
            ]
        )
        value = _u16(rng) if width == 2 else _u32(rng)
        packed = struct.pack("<H" if width == 2 else "<I", value)
        buf[pos + off : pos + off + width] = packed
        return f"wav_{name}={value}"
    if chunks and choice < 0.9:
        pos, cid, _ = rng.choice(chunks)
        value = _u32(rng)
        buf[pos + 4 : pos + 8] = struct.pack("<I", value)
        return f"wav_chunk_size {cid!r}={value:#x}"
    value = _u32(rng)
    buf[4:8] = struct.pack("<I", value)
    return f"wav_riff_size={value:#x}"


def _corrupt_nist(buf: bytearray, rng: random.Random) -> str:
    end = bytes(buf).find(b"end_head")
    if end < 0:
        return bit_flip(buf, rng, None)
    header_len = min(len(buf), 1024) if end < 1024 else end + 9
    lines = bytes(buf[:end]).decode("latin-1").split("\n")
    k = rng.randrange(1, len(lines) - 1) if len(lines) > 2 else 0
    parts = lines[k].split()
    value = rng.choice(NIST_VALUES) if rng.random() < 0.8 else str(rng.getrandbits(40))
    if rng.random() < 0.1:
        lines[k] = ""
        what = f"nist_drop_line {k}"
    elif len(parts) >= 3:
        lines[k] = f"{parts[0]} {parts[1]} {value}"
        what = f"nist {parts[0]}={value!r}"
    else:
        lines[k] = f"   {value}"
        what = f"nist line {k}={value!r}"
    header = "\n".join(lines).encode("latin-1") + b"end_head\n"
    buf[:header_len] = header.ljust(header_len, b" ")  # longer: the data shifts
    return what


def _corrupt_flac(buf: bytearray, rng: random.Random) -> str:
    name, bit, width = rng.choice(
        [
            ("block_type", 32, 8),
            ("block_length", 40, 24),
            ("min_blocksize", 64, 16),
            ("max_blocksize", 80, 16),
            ("min_framesize", 96, 24),
            ("max_framesize", 120, 24),
            ("sample_rate", 144, 20),
            ("channels", 164, 3),
            ("bits_per_sample", 167, 5),
            ("total_samples", 172, 36),
        ]
    )
    value = rng.choice([0, 1, (1 << width) - 1, 1 << (width - 1)])
    if rng.random() < 0.5:
        value = rng.getrandbits(width)
    _put_bits(buf, bit, width, value)
    return f"flac_{name}={value}"


def _corrupt_ogg(buf: bytearray, rng: random.Random) -> str:
    pages = _ogg_pages(bytes(buf))
    if not pages:
        return bit_flip(buf, rng, None)
    k = (
        rng.randrange(min(len(pages), 4))
        if rng.random() < 0.7
        else rng.randrange(len(pages))
    )
    start, end = pages[k]
    body = start + 27 + buf[start + 26]
    fields = [
        ("header_type", start + 5, 1),
        ("granule", start + 6, 4),
        ("granule_hi", start + 10, 4),
        ("serial", start + 14, 4),
        ("seqno", start + 18, 4),
        ("nsegs", start + 26, 1),
        ("segment", start + 27 + rng.randrange(max(1, buf[start + 26])), 1),
    ]
    if k == 0:  # the Vorbis identification header
        fields += [
            ("vorbis_channels", body + 11, 1),
            ("vorbis_rate", body + 12, 4),
            ("vorbis_bitrate", body + 20, 4),
            ("vorbis_blocksizes", body + 28, 1),
        ]
    name, at, width = rng.choice(fields)
    value = _u32(rng) & ((1 << (8 * width)) - 1)
    buf[at : at + width] = value.to_bytes(width, "little")[: len(buf[at : at + width])]
    fixed = rng.random() < 0.7 and end <= len(buf) and name not in ("nsegs", "segment")
    if fixed:  # a page with a bad checksum is skipped: make the decoder see it
        _ogg_recrc(buf, start, end)
    return f"ogg page {k} {name}={value:#x}" + (" (crc fixed)" if fixed else "")


def _corrupt_mp3(buf: bytearray, rng: random.Random) -> str:
    syncs = [
        i
        for i in range(min(len(buf) - 3, 20000))
        if buf[i] == 0xFF and buf[i + 1] >= 0xE0
    ]
    if not syncs:
        return bit_flip(buf, rng, None)
    at = rng.choice(syncs[:8]) if rng.random() < 0.7 else rng.choice(syncs)
    bit = 8 * at + rng.randrange(11, 32)
    width = rng.randint(1, 4)
    value = rng.getrandbits(width)
    _put_bits(buf, bit, width, value)
    return f"mp3_frame_header@{at} bit {bit - 8 * at}+{width}={value}"


MUTATIONS = {
    "bit_flip": bit_flip,
    "byte_overwrite": byte_overwrite,
    "truncate": truncate,
    "zero_fill": zero_fill,
    "insert_random": insert_random,
    "duplicate_chunk": duplicate_chunk,
    "splice": splice,
    "corrupt_header": corrupt_header,
}
WEIGHTS = {"corrupt_header": 4, "bit_flip": 2, "byte_overwrite": 2, "truncate": 2}


def make_mutant(
    seeds: list[tuple[str, bytes]], seed: int, iteration: int
) -> tuple[str, bytes, list[str]]:
    """The mutant of (seed, iteration): (source file name, bytes, mutations)."""
    rng = random.Random(f"fuzz-audio:{seed}:{iteration}")
    name, data = rng.choice(seeds)
    buf = bytearray(data)
    names = list(MUTATIONS)
    weights = [WEIGHTS.get(n, 1) for n in names]
    done = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        if not buf:
            break
        op = rng.choices(names, weights)[0]
        done.append(MUTATIONS[op](buf, rng, seeds))
    return name, bytes(buf), done


# ------------------------------------------------------------------- checking


def _bad_waveform(wav, what: str) -> str | None:
    import numpy as np

    if not isinstance(wav, np.ndarray):
        return f"{what} returned {type(wav).__name__}, not an ndarray"
    if wav.dtype != np.float32 or wav.ndim != 1:
        return f"{what} returned {wav.dtype} with shape {wav.shape}"
    if not np.isfinite(wav).all():
        return f"{what} returned {int((~np.isfinite(wav)).sum())} non-finite samples"
    return None


def _outcome(api: str, name: str, call) -> tuple[str, str, str]:
    """Run ``call``; (api, outcome, detail) where outcome is ok/audio_error or not."""
    from asr.audio.files import AudioError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem = call()
    except AudioError as err:
        if name not in str(err):
            return api, "unnamed_error", f"AudioError does not name the file: {err}"
        return api, "audio_error", str(err).replace(name, "<file>")[:200]
    except Exception as err:  # noqa: BLE001 - the point is to see every type
        tb = traceback.format_exc(limit=-4)
        return (
            api,
            f"exception:{type(err).__name__}",
            f"{type(err).__name__}: {err}\n{tb}",
        )
    if problem:
        return api, "bad_output", problem
    return api, "ok", ""


def check_file(path: str, with_stream: bool) -> list[tuple[str, str, str]]:
    """The outcome of each loader API on one file."""
    from asr.audio.files import decode_audio_bytes, load_audio, stream_audio

    def load():
        return _bad_waveform(load_audio(path), "load_audio")

    def stream():
        for block in stream_audio(path, block_seconds=0.5):
            problem = _bad_waveform(block, "stream_audio")
            if problem:
                return problem
        return None

    def from_bytes():
        blob = Path(path).read_bytes()
        return _bad_waveform(decode_audio_bytes(blob), "decode_audio_bytes")

    results = [_outcome("load_audio", path, load)]
    if with_stream:
        results.append(_outcome("stream_audio", path, stream))
        results.append(_outcome("decode_audio_bytes", "<stdin>", from_bytes))
    return results


def _warm_up() -> None:
    """Import everything the loader may import, so the watchdog times only work."""
    import numpy as np

    from asr.audio.files import resample

    resample(np.zeros(100, dtype=np.float32), 8000, 16000)


def _limit_memory(limit: int) -> None:
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker_main(conn, memory_limit: int, stderr_path: str) -> None:
    _limit_memory(memory_limit)
    # C decoders (mpg123) chatter on stderr: keep it in a file, shown on a crash
    log = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 2)
    warnings.simplefilter("ignore")
    _warm_up()
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        os.ftruncate(2, 0)
        os.lseek(2, 0, os.SEEK_SET)
        conn.send(check_file(*job))


class _Worker:
    def __init__(self, ctx, memory_limit: int, tmp: str):
        self.conn, child = ctx.Pipe()
        fd, self.stderr_path = tempfile.mkstemp(".log", "worker-", dir=tmp)
        os.close(fd)
        self.proc = ctx.Process(
            target=_worker_main,
            args=(child, memory_limit, self.stderr_path),
            daemon=True,
        )
        self.proc.start()
        child.close()
        self.job: tuple | None = None
        self.deadline = 0.0
        if not self.conn.poll(180) or self.conn.recv() != "ready":
            self.kill()
            raise RuntimeError("a fuzz worker did not start")

    def submit(self, job: tuple, timeout: float) -> None:
        self.conn.send(job[1:3])  # (path, with_stream)
        self.job, self.deadline = job, time.monotonic() + timeout

    def stderr_tail(self) -> str:
        text = Path(self.stderr_path).read_text(errors="replace").strip()
        return f"; its stderr ends: {text[-600:]}" if text else ""

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(5)
        if self.proc.is_alive():
            self.kill()


# ------------------------------------------------------------------ the run


@dataclass
class Failure:
    iteration: int
    source: str
    mutations: list[str]
    api: str
    outcome: str
    detail: str


@dataclass
class FuzzReport:
    seed: int
    iterations: int
    counts: Counter = field(default_factory=Counter)  # (api, outcome) -> n
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def run_fuzz(
    iterations: int,
    seed: int = 0,
    *,
    workers: int = 2,
    timeout: float = 10.0,
    stream_every: int = 4,
    memory_limit: int = MEMORY_LIMIT,
    verbose: bool = False,
) -> FuzzReport:
    """Check ``iterations`` mutants in ``workers`` watched worker processes."""
    start = time.monotonic()
    seeds = seed_files()
    report = FuzzReport(seed, iterations)
    ctx = mp.get_context("spawn")  # no fork of a parent that may run torch threads
    with tempfile.TemporaryDirectory(prefix="fuzz-audio-") as tmp:
        jobs = []
        for i in range(iterations):
            source, blob, mutations = make_mutant(seeds, seed, i)
            path = Path(tmp) / f"mutant-{i:06d}{Path(source).suffix}"
            path.write_bytes(blob)
            jobs.append((i, str(path), i % stream_every == 0, source, mutations))

        def spawn():
            return _Worker(ctx, memory_limit, tmp)

        pool = [spawn() for _ in range(max(1, workers))]
        try:
            _drive(pool, iter(jobs), spawn, report, timeout, verbose)
        finally:
            for w in pool:
                w.stop()
    report.seconds = time.monotonic() - start
    return report


def _drive(pool, todo, spawn, report, timeout, verbose) -> None:
    def record(job, results):
        i, _, _, source, mutations = job
        for api, outcome, detail in results:
            report.counts[api, outcome] += 1
            if outcome not in ALLOWED:
                failure = Failure(i, source, mutations, api, outcome, detail)
                report.failures.append(failure)
                if verbose:
                    print(format_failure(failure, report.seed), flush=True)

    def feed(w) -> bool:
        job = next(todo, None)
        if job is not None:
            w.submit(job, timeout)
        return job is not None

    for w in pool:
        feed(w)
    while any(w.job for w in pool):
        busy = [w for w in pool if w.job]
        left = max(0.0, min(w.deadline for w in busy) - time.monotonic())
        wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], left + 0.05)
        for k, w in enumerate(pool):
            if not w.job:
                continue
            job = w.job
            try:
                results = w.conn.recv() if w.conn.poll() else None
            except (EOFError, OSError):
                results = None
            if results is not None:
                w.job = None
                record(job, results)
                feed(w)
                continue
            dead = not w.proc.is_alive()
            if not dead and time.monotonic() < w.deadline:
                continue
            if dead:
                code = w.proc.exitcode or 0
                how = f"signal {signal.Signals(-code).name}" if code < 0 else code
                why = f"the worker died ({how}){w.stderr_tail()}"
                record(job, [("worker", "crash", why)])
            else:
                why = f"no result after {timeout:g} s{w.stderr_tail()}"
                record(job, [("worker", "hang", why)])
            w.job = None
            w.kill()
            pool[k] = spawn()
            feed(pool[k])


def format_failure(f: Failure, seed: int) -> str:
    detail = f.detail.rstrip().replace("\n", "\n    ")
    return (
        f"FAIL iteration {f.iteration} (seed {seed}): {f.api} -> {f.outcome}\n"
        f"    source {f.source}; mutations: {'; '.join(f.mutations)}\n"
        f"    {detail}\n"
        f"    reproduce: python scripts/fuzz_audio.py --seed {seed} "
        f"--iteration {f.iteration}"
    )


def format_summary(report: FuzzReport) -> str:
    lines = [
        f"fuzz_audio: {report.iterations} mutants, seed {report.seed}, "
        f"{report.seconds:.1f} s"
    ]
    apis = sorted({api for api, _ in report.counts})
    for api in apis:
        outcomes = sorted((o, n) for (a, o), n in report.counts.items() if a == api)
        lines.append(f"  {api:<19} " + "  ".join(f"{o}={n}" for o, n in outcomes))
    lines.append(f"failures: {len(report.failures)}")
    return "\n".join(lines)


def reproduce(seed: int, iteration: int, save: str | None) -> int:
    """Rebuild one mutant and check it in this process, with full tracebacks."""
    _limit_memory(MEMORY_LIMIT)  # as in the workers: a huge allocation fails
    source, blob, mutations = make_mutant(seed_files(), seed, iteration)
    print(f"iteration {iteration} (seed {seed}): source {source}")
    print(f"mutations: {'; '.join(mutations)} ({len(blob)} bytes)")
    with tempfile.TemporaryDirectory(prefix="fuzz-audio-") as tmp:
        path = Path(save) if save else Path(tmp) / f"mutant{Path(source).suffix}"
        path.write_bytes(blob)
        failed = False
        for api, outcome, detail in check_file(str(path), True):
            failed |= outcome not in ALLOWED
            print(f"{api}: {outcome}" + (f"\n  {detail}" if detail else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per file")
    parser.add_argument("--stream-every", type=int, default=4)
    parser.add_argument("--iteration", type=int, help="reproduce this one mutant")
    parser.add_argument("--save", help="with --iteration: keep the mutant here")
    args = parser.parse_args(argv)
    if args.iteration is not None:
        return reproduce(args.seed, args.iteration, args.save)
    report = run_fuzz(
        args.iterations,
        args.seed,
        workers=args.workers,
        timeout=args.timeout,
        stream_every=args.stream_every,
        verbose=True,
    )
    print(format_summary(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
