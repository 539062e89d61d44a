"""Feature extraction throughput: asr.features.frontend against librosa, side by side.

    python scripts/bench_features.py [--manifest data/an4/dev.jsonl] [--repeats 5]

The same audio (read beforehand, so file reading is not timed) goes through:
our LogMel one file at a time and in length-sorted padded batches, our whole
Frontend (level normalisation + LogMel + CMVN) in batches, and
librosa.feature.melspectrogram (same n_fft, window, hop, n_mels, power 2,
center=False, then the same clamped natural log) one file at a time and on the
same padded batches. Every method runs once per round, rounds interleave them,
and the table gives the median throughput in audio seconds per wall second and
per CPU second (process time: less disturbed by other jobs on a busy machine).
"x librosa" compares with librosa one file at a time, as it is usually called.
Both sides run on ``--threads`` threads (torch intra-op and numpy's BLAS).

It also compares the features numerically: against librosa with the HTK mel
scale and no filter normalisation (torchaudio's defaults) they should agree to
float32 rounding; librosa's defaults (Slaney mel scale, Slaney area
normalisation) give different filters, hence different features.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from asr.audio.files import SAMPLE_RATE, load_audio
from asr.data.manifest import read_manifest
from asr.features.frontend import FeatureConfig, Frontend, LogMel

FLOOR = 1e-10  # LogMel's clamp before the log


def librosa_logmel(y: np.ndarray, cfg: FeatureConfig, **mel_kwargs) -> np.ndarray:
    """y: shape = (S,) or (B, S) -> (..., n_mels, T) natural-log mel energies."""
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window="hann",
        center=False,
        power=2.0,
        n_mels=cfg.n_mels,
        **mel_kwargs,
    )
    return np.log(np.maximum(mel, FLOOR))


def make_batches(wavs: list[np.ndarray], batch_size: int):
    """Length-sorted (B, S) zero-padded batches as (numpy, torch, lengths)."""
    lengths = [len(w) for w in wavs]
    order = sorted(range(len(wavs)), key=lengths.__getitem__)
    out = []
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        padded = np.zeros((len(idx), lengths[idx[-1]]), dtype=np.float32)
        for row, i in enumerate(idx):
            padded[row, : lengths[i]] = wavs[i]
        out.append((padded, torch.from_numpy(padded), torch.tensor(lengths)[idx]))
    return out


def methods(wavs: list[np.ndarray], cfg: FeatureConfig, batch_size: int) -> dict:
    """name -> a function that extracts features for all of ``wavs`` once."""
    logmel, frontend = LogMel(cfg), Frontend(cfg)
    singles = [torch.from_numpy(w)[None] for w in wavs]
    single_lens = [torch.tensor([len(w)]) for w in wavs]
    batches = make_batches(wavs, batch_size)
    htk = {"htk": True, "norm": None}

    def ours_single():
        for x, n in zip(singles, single_lens):
            logmel(x, n)

    def ours_batch():
        for _, x, n in batches:
            logmel(x, n)

    def frontend_batch():
        for _, x, n in batches:
            frontend(x, n)

    def librosa_single():
        for w in wavs:
            librosa_logmel(w, cfg, **htk)

    def librosa_batch():
        for y, _, _ in batches:
            librosa_logmel(y, cfg, **htk)

    return {
        "asr LogMel, one file at a time": ours_single,
        f"asr LogMel, batches of {batch_size}": ours_batch,
        f"asr Frontend (level, LogMel, CMVN), batches of {batch_size}": frontend_batch,
        "librosa melspectrogram + log, one file at a time": librosa_single,
        f"librosa melspectrogram + log, batches of {batch_size}": librosa_batch,
    }


def measure(
    fns: dict[str, Callable[[], None]], repeats: int, warmup: int = 1
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each function, rounds interleaving them."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    with torch.inference_mode():
        for round_ in range(warmup + repeats):
            for name, fn in fns.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                if round_ >= warmup:
                    dt = time.perf_counter() - t0, time.process_time() - c0
                    times[name].append(dt)
    return {
        name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
        for name, t in times.items()
    }


def agreement(wavs: list[np.ndarray], cfg: FeatureConfig) -> dict[str, float]:
    """Largest and mean |ours - librosa| over all frames (natural-log units)."""
    logmel = LogMel(cfg)
    diffs: dict[str, list[np.ndarray]] = {"htk": [], "default": []}
    with torch.inference_mode():
        for w in wavs:
            ours = logmel(torch.from_numpy(w)[None], torch.tensor([len(w)]))[0][0]
            ours = ours.numpy().T  # (n_mels, T)
            for key, kw in (("htk", {"htk": True, "norm": None}), ("default", {})):
                ref = librosa_logmel(w, cfg, **kw)
                diffs[key].append(np.abs(ours - ref).ravel())
    out = {}
    for key, d in diffs.items():
        d = np.concatenate(d)
        out[f"{key}_max"], out[f"{key}_mean"] = float(d.max()), float(d.mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/dev.jsonl"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = FeatureConfig(level_db=-25.0)  # as conf/features/logmel80.yaml
    wavs = [load_audio(u.audio_filepath) for u in read_manifest(args.manifest)]
    audio = sum(len(w) for w in wavs) / SAMPLE_RATE
    with threadpool_limits(args.threads):
        medians = measure(methods(wavs, cfg, args.batch_size), args.repeats)
        agree = agreement(wavs, cfg)
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {args.threads} thread(s); torch "
        f"{torch.__version__}, librosa {librosa.__version__}"
    )
    print(f"{len(wavs)} files, {audio:.1f} s of audio; median of {args.repeats} rounds")
    print(
        "| features | wall s | audio s per wall s | x librosa | CPU s "
        "| audio s per CPU s | x librosa (CPU) |"
    )
    print("|---|---|---|---|---|---|---|")
    ref_wall, ref_cpu = medians["librosa melspectrogram + log, one file at a time"]
    for name, (wall, cpu) in medians.items():
        print(
            f"| {name} | {wall:.3f} | {audio / wall:.0f} | {ref_wall / wall:.1f}x "
            f"| {cpu:.3f} | {audio / cpu:.0f} | {ref_cpu / cpu:.1f}x |"
        )
    print(
        f"|ours - librosa| in log-mel (nats): HTK scale, no norm: max "
        f"{agree['htk_max']:.2e}, mean {agree['htk_mean']:.2e}; librosa defaults "
        f"(Slaney scale + norm): max {agree['default_max']:.2f}, "
        f"mean {agree['default_mean']:.2f}"
    )


if __name__ == "__main__":
    main()
