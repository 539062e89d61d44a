"""CPU training step of the AN4 config against the bare-LSTM compute floor.

    python scripts/bench_train_step.py [--manifest data/an4/train.jsonl] \
        [--batches 8] [--repeats 2] [--threads 1] [--profile]

A (training step): ``Trainer.train_step`` itself, on real AN4 batches drawn by the
real DurationBatchSampler with the AN4 data config (conf/an4.yaml composed by
Hydra, as `asr-train` does): level normalisation + log-mel + CMVN, SpecAugment,
conv subsampling, 3 x 320 BiLSTM with LayerNorm and dropout, CTC head, CTC loss,
backward, gradient clipping, AdamW and scheduler step. Batches are loaded (and
speed-perturbed) beforehand; their loading time is reported on its own, since in
training a DataLoader worker does it while the main process computes.

B (floor): one bare ``nn.LSTM(num_layers=3, bidirectional=True)`` with the
model's sizes, forward + backward on a packed random input of exactly the
shapes the model's LSTMs see for that batch (the same per-utterance lengths
after conv subsampling). The conv subsampling and CTC head are part of the
model but not of this floor: they count as overhead in A / B.

D (padded floor): the same LSTM stack as two unidirectional nn.LSTMs per layer
on the zero-padded batch, the backward one reading each row reversed within its
own length (a gather), so padding never reaches a real frame and the outputs
equal the packed ones. On the CPU this runs torch's oneDNN LSTM kernels, whereas
a packed sequence runs a step-by-step loop whose backward zero-fills a gradient
of the whole packed batch at every time step: B / D shows what that costs.

C (network): the model's own network (conv subsampling + BiLSTM layers with
LayerNorm and dropout + CTC head) forward + backward of a plain sum, on the
batch's normalised features: A / C is the training machinery around the model
(frontend, SpecAugment, CTC, clipping, optimizer), C / B the model's layers
around its LSTMs.

A, B, C and D run interleaved over the same batches (warm-up first); the table
gives median milliseconds per step and the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from asr.data.dataset import Batch, collate
from asr.model.acoustic import ConvSubsampling
from asr.train.config import TrainConfig
from asr.train.trainer import Trainer

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


class _NullWriter:
    """Stands in for the TensorBoard writer that ``Trainer.fit`` opens."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass


def an4_config(
    manifest: Path, out_dir: Path, threads: int, overrides=(), device: str = "cpu"
) -> TrainConfig:
    """conf/an4.yaml composed as `asr-train` composes it (on the CPU by default)."""
    from hydra import compose, initialize_config_dir

    from asr.train.__main__ import to_train_config

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        raw = compose(
            config_name="an4",
            overrides=[
                f"data.train_manifest={manifest}",
                f"data.dev_manifest={manifest}",
                f"trainer.out_dir={out_dir}",
                f"trainer.device={device}",
                f"trainer.threads={threads}",
                "trainer.progress=false",
                *overrides,
            ],
        )
    return to_train_config(raw)


def neutral_cmvn(cfg: TrainConfig, out_dir: Path) -> None:
    """Point the config at identity CMVN statistics: their values do not change
    the cost of a step, and computing real ones reads the whole corpus."""
    if cfg.data.cmvn_stats:
        return
    path = out_dir / "cmvn_neutral.pt"
    n = cfg.features.n_mels
    stats = {"mean": torch.zeros(n), "std": torch.ones(n)}
    torch.save({**stats, "level_db": cfg.features.level_db}, path)
    cfg.data.cmvn_stats = str(path)


def make_trainer(cfg: TrainConfig) -> Trainer:
    trainer = Trainer(cfg)
    trainer.writer = _NullWriter()
    return trainer


def load_batches(trainer: Trainer, n_batches: int) -> tuple[list[Batch], list[float]]:
    """The first ``n_batches`` batches of the epoch from which SpecAugment applies
    (shuffled, as most epochs are), with each one's loading seconds."""
    epoch = trainer.cfg.augment.specaug_start_epoch
    trainer.dataset.epoch = epoch
    trainer.sampler.set_epoch(epoch)
    batches, seconds = [], []
    for idx in trainer.sampler.epoch_batches()[:n_batches]:
        t0 = time.perf_counter()
        batch = collate([trainer.dataset[i] for i in idx])
        seconds.append(time.perf_counter() - t0)
        if batch is not None:
            batches.append(batch)
    return batches, seconds


class LSTMFloor:
    """B: the bare LSTM stack forward + backward on the model's LSTM shapes."""

    def __init__(self, trainer: Trainer):
        model = trainer.model
        cfg = model.cfg
        self.in_dim = model.subsampling.out_dim
        self.lstm = nn.LSTM(
            self.in_dim,
            cfg.hidden_size,
            num_layers=cfg.n_layers,
            batch_first=True,
            bidirectional=True,
        )
        self.frame_lens = model.frontend.logmel.frame_lens

    def inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        lens = ConvSubsampling.out_lens(self.frame_lens(batch.wav_lens)).clamp(min=1)
        x = torch.randn(len(lens), int(lens.max()), self.in_dim, requires_grad=True)
        return x, lens

    def step(self, x: torch.Tensor, lens: torch.Tensor) -> None:
        self.lstm.zero_grad(set_to_none=True)
        x.grad = None
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out.data.sum().backward()


class PaddedLSTMFloor(nn.Module):
    """D: the floor's LSTM stack (its weights copied) on the zero-padded batch,
    one unidirectional nn.LSTM per direction and layer; the backward one reads
    each row reversed within its own length, so padding never reaches real frames.
    """

    def __init__(self, floor: LSTMFloor):
        super().__init__()
        lstm = floor.lstm
        sizes = [floor.in_dim] + [2 * lstm.hidden_size] * (lstm.num_layers - 1)
        self.fwd, self.bwd = nn.ModuleList(), nn.ModuleList()
        for k, n in enumerate(sizes):
            for rnns, suffix in ((self.fwd, ""), (self.bwd, "_reverse")):
                rnn = nn.LSTM(n, lstm.hidden_size, batch_first=True)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    src = getattr(lstm, f"{name}_l{k}{suffix}")
                    getattr(rnn, f"{name}_l0").data.copy_(src.data)
                rnns.append(rnn)

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """x: shape = (B, T, D), lens (B,) -> (B, T, 2H); frames past lens are 0."""
        t = torch.arange(x.shape[1])[None]  # (1, T)
        valid = t < lens[:, None]  # (B, T)
        rev = torch.where(valid, lens[:, None] - 1 - t, t)[..., None]  # own inverse
        for fwd, bwd in zip(self.fwd, self.bwd):
            backward = bwd(x.gather(1, rev.expand(-1, -1, x.shape[2])))[0]
            backward = backward.gather(1, rev.expand(-1, -1, backward.shape[2]))
            x = torch.cat([fwd(x)[0], backward], dim=-1)
        return x * valid[..., None]

    def step(self, x: torch.Tensor, lens: torch.Tensor) -> None:
        self.zero_grad(set_to_none=True)
        x.grad = None
        self(x, lens).sum().backward()


def network_step(trainer: Trainer, feats: torch.Tensor, feat_lens: torch.Tensor):
    """C: the model's network forward + backward, without the training machinery."""
    trainer.model.zero_grad(set_to_none=True)
    log_probs, _ = trainer.model.forward_features(feats, feat_lens)
    log_probs.sum().backward()


@dataclass
class Timings:
    step: list[float] = field(default_factory=list)  # A, seconds
    floor: list[float] = field(default_factory=list)  # B
    network: list[float] = field(default_factory=list)  # C
    padded: list[float] = field(default_factory=list)  # D

    def summary(self) -> dict:
        med = {k: statistics.median(v) for k, v in vars(self).items()}
        pairs = list(zip(self.step, self.floor, self.network, self.padded))
        return {
            **{f"{k}_ms": 1000 * v for k, v in med.items()},
            "step_over_floor": med["step"] / med["floor"],
            "step_over_network": med["step"] / med["network"],
            "network_over_floor": med["network"] / med["floor"],
            "padded_over_floor": med["padded"] / med["floor"],
            "step_over_padded": med["step"] / med["padded"],
            # per-pair ratios: robust to background load that drifts between pairs
            "paired_step_over_floor": statistics.median(a / b for a, b, _, _ in pairs),
            "paired_step_over_network": statistics.median(
                a / c for a, _, c, _ in pairs
            ),
            "paired_step_over_padded": statistics.median(a / d for a, _, _, d in pairs),
            "n": len(pairs),
        }


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def measure(trainer: Trainer, batches: list[Batch], repeats: int, warmup: int = 2):
    """A, B, C, D interleaved over ``batches``, ``repeats`` times, after ``warmup``
    batches of each. Returns Timings (seconds per step)."""
    floor = LSTMFloor(trainer)
    padded = PaddedLSTMFloor(floor)
    shapes = [floor.inputs(b) for b in batches]
    with torch.no_grad():
        features = [trainer.model.frontend(b.wavs, b.wav_lens) for b in batches]
    timings = Timings()
    for k in range(warmup):
        i = k % len(batches)
        trainer.train_step(batches[i], use_specaug=True)
        floor.step(*shapes[i])
        network_step(trainer, *features[i])
        padded.step(*shapes[i])
    for _ in range(repeats):
        for batch, shape, feats in zip(batches, shapes, features):
            timings.step.append(_timed(trainer.train_step, batch, True))
            timings.floor.append(_timed(floor.step, *shape))
            timings.network.append(_timed(network_step, trainer, *feats))
            timings.padded.append(_timed(padded.step, *shape))
    return timings


def profile_step(trainer: Trainer, batches: list[Batch], rows: int = 25) -> str:
    """torch.profiler table of the training step over ``batches`` (self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            trainer.train_step(batch, use_specaug=True)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def print_table(t: dict, batches: list[Batch], load_s: list[float]) -> None:
    utts = sum(len(b.indices) for b in batches)
    audio = sum(float(b.wav_lens.sum()) for b in batches) / 16000
    print(
        f"{len(batches)} batches, {utts} utterances, {audio:.1f} s of audio; "
        f"{t['n']} timed steps of each kind"
    )
    print(
        f"batch loading (read + speed perturbation + collate), median: "
        f"{1000 * statistics.median(load_s):.0f} ms per batch (not in A)"
    )
    print("| measurement | median ms / step | ratio to B (floor) |")
    print("|---|---|---|")
    print(
        f"| A: training step (Trainer.train_step) | {t['step_ms']:.0f} "
        f"| **{t['step_over_floor']:.2f}x** "
        f"(paired {t['paired_step_over_floor']:.2f}x) |"
    )
    print(
        f"| C: network fwd + bwd (conv + BiLSTM/LN/dropout + head) | "
        f"{t['network_ms']:.0f} | {t['network_over_floor']:.2f}x |"
    )
    print(f"| B: bare nn.LSTM stack fwd + bwd (floor) | {t['floor_ms']:.0f} | 1.00x |")
    print(
        f"| D: same LSTMs on the padded batch, per direction (oneDNN) | "
        f"{t['padded_ms']:.0f} | {t['padded_over_floor']:.2f}x |"
    )
    print(
        f"A / C (training machinery around the network): {t['step_over_network']:.2f}x"
        f" (paired {t['paired_step_over_network']:.2f}x); A / D: "
        f"{t['step_over_padded']:.2f}x (paired {t['paired_step_over_padded']:.2f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=Path("data/an4/train.jsonl"))
    ap.add_argument("--batches", type=int, default=8, help="batches measured")
    ap.add_argument("--repeats", type=int, default=2, help="passes over the batches")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--cmvn-stats", type=Path, help="default: identity statistics")
    ap.add_argument("--profile", action="store_true", help="also torch.profiler A")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extra = [f"data.cmvn_stats={args.cmvn_stats}"] if args.cmvn_stats else []
        cfg = an4_config(args.manifest.resolve(), Path(tmp), args.threads, extra)
        neutral_cmvn(cfg, Path(tmp))
        trainer = make_trainer(cfg)
        batches, load_s = load_batches(trainer, args.batches)
        print(
            f"machine: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads; model "
            f"{trainer.model.n_params() / 1e6:.2f} M parameters"
        )
        timings = measure(trainer, batches, args.repeats)
        print_table(timings.summary(), batches, load_s)
        if args.profile:
            print(profile_step(trainer, batches))


if __name__ == "__main__":
    main()
