"""fit(cfg): the CTC training loop with validation, checkpoints and exact resume."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from asr.audio import load_audio
from asr.augment import SpecAugment
from asr.checkpoint import atomic_save, load_model, safe_load, save_model
from asr.config import OptimConfig, TrainConfig
from asr.data import (
    DurationBatchSampler,
    Manifest,
    SpeechDataset,
    collate,
    read_manifest,
    sample_indices,
)
from asr.features import compute_cmvn_stats
from asr.metrics import score
from asr.model import ASRModel
from asr.text import CharTokenizer
from asr.transcribe import Transcriber

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands; saved with the resume state."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_wer: float = math.inf
    skipped_batches: int = 0
    history: list = field(default_factory=list)


class Interrupted(Exception):
    """Raised inside the loop on SIGINT/SIGTERM after the state is saved."""


def init_from_checkpoint(
    path: str, cfg: TrainConfig, texts
) -> tuple[ASRModel, CharTokenizer]:
    """A new model for ``cfg`` holding a trained checkpoint's weights (fine-tuning).

    The architecture must match; the checkpoint's vocabulary is kept and must
    cover every character of ``texts``; its CMVN statistics come along."""
    trained, tokenizer, _ = load_model(path)
    if dataclasses.asdict(trained.cfg) != dataclasses.asdict(cfg.model):
        raise ValueError(
            f"trainer.init_from={path}: its model config {trained.cfg} differs from "
            f"model={cfg.model}"
        )
    unknown = set()
    for text in texts:
        unknown |= set(text) - set(tokenizer.symbols)
    if unknown:
        raise ValueError(
            f"trainer.init_from={path}: the training texts use characters its "
            f"vocabulary lacks: {sorted(unknown)}"
        )
    model = ASRModel(cfg.model, cfg.features, len(tokenizer))
    model.load_state_dict(trained.float().state_dict())
    return model, tokenizer


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_lambda(cfg: OptimConfig, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up to the peak, then cosine decay to ``final_lr_ratio``."""

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (
            1 + math.cos(math.pi * t)
        )

    return f


class Trainer:
    """Owns model, optimiser, data and state for one run (see ``fit``)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg, tc = cfg, cfg.trainer
        if tc.threads:
            torch.set_num_threads(tc.threads)
        _seed_everything(tc.seed)
        self.device = pick_device(tc.device)
        self.out_dir = Path(tc.out_dir)
        self.train_utts = Manifest(cfg.data.train_manifest)  # lazy: any corpus size
        self.dev_utts = read_manifest(cfg.data.dev_manifest)
        if tc.init_from:  # fine-tuning: weights, vocabulary and CMVN from there
            self.model, self.tokenizer = init_from_checkpoint(
                tc.init_from, cfg, self.train_utts.texts()
            )
        else:
            self.tokenizer = CharTokenizer.build(self.train_utts.texts())
            self.model = ASRModel(cfg.model, cfg.features, len(self.tokenizer))
        if not tc.init_from or cfg.data.cmvn_stats:
            self.model.frontend.cmvn.set_stats(*self._cmvn_stats())
        self.model.to(self.device)
        self.specaug = SpecAugment(cfg.augment)
        self.dataset = SpeechDataset(
            self.train_utts, self.tokenizer, cfg.augment.speed_factors, tc.seed
        )
        self.sampler = DurationBatchSampler(
            self.train_utts.durations,
            cfg.data.max_batch_seconds,
            cfg.data.max_batch_size,
            shuffle=True,
            sortagrad=cfg.data.sortagrad,
            seed=tc.seed,
        )
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=o.lr,
            betas=tuple(o.betas),
            weight_decay=o.weight_decay,
        )
        total = tc.epochs * len(self.sampler.batches)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(o, total)
        )
        self.progress = Progress()
        self.last_loss = math.nan
        self.writer = None
        self.signals = _signals_interrupt()

    def _cmvn_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cfg.data.cmvn_stats:
            stats = safe_load(self.cfg.data.cmvn_stats)
            level_db = stats.get("level_db")
            if level_db != self.cfg.features.level_db:
                raise ValueError(
                    f"{self.cfg.data.cmvn_stats} was computed with level_db={level_db}"
                    f" but features.level_db={self.cfg.features.level_db}: rerun "
                    "`asr stats` with the matching --level-db"
                )
            return stats["mean"], stats["std"]
        utts, seed = self.train_utts, self.cfg.trainer.seed
        picked = sample_indices(len(utts), self.cfg.data.cmvn_max_utterances, seed)
        log.info(
            "computing feature statistics over %d of %d utterances",
            len(picked),
            len(utts),
        )
        return compute_cmvn_stats(
            (load_audio(utts[i].audio_filepath) for i in picked), self.cfg.features
        )

    # ---- state ---------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.out_dir / "last.state.pt"

    def save_state(self) -> None:
        """Everything needed to continue exactly here (kept apart from the model)."""
        atomic_save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "progress": dataclasses.asdict(self.progress),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all()
                    if torch.cuda.is_available()
                    else [],
                },
            },
            self.state_path,
        )

    def load_state(self) -> None:
        s = safe_load(self.state_path)
        self.model.load_state_dict(s["model"])
        self.optimizer.load_state_dict(s["optimizer"])
        self.scheduler.load_state_dict(s["scheduler"])
        self.progress = Progress(**s["progress"])
        torch.set_rng_state(s["rng"]["torch"])
        random.setstate(_as_tuple(s["rng"]["python"]))
        if s["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(s["rng"]["cuda"])
        log.info(
            "resumed at epoch %d step %d",
            self.progress.epoch,
            self.progress.step_in_epoch,
        )

    def metadata(self, dev: dict) -> dict:
        from asr import __version__

        return {
            "train_manifest": self.cfg.data.train_manifest,
            "n_train_utterances": len(self.train_utts),
            "epochs_trained": self.progress.epoch + 1,
            "steps": self.progress.global_step,
            "dev_wer": dev["wer"],
            "dev_cer": dev["cer"],
            "asr_version": __version__,
            "config": dataclasses.asdict(self.cfg),
        }

    # ---- loop ----------------------------------------------------------------
    def fit(self, on_step: Callable[[Trainer], None] | None = None) -> Path:
        tc = self.cfg.trainer
        for stale in self.out_dir.glob(".*.pt.*"):  # a write cut short by kill -9
            stale.unlink(missing_ok=True)
        if tc.resume and self.state_path.is_file():
            self.load_state()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        with _signals_interrupt() as self.signals:
            try:
                while self.progress.epoch < tc.epochs:
                    self.train_epoch(on_step)
                    self.end_epoch()
                    self.signals.check()
            except (KeyboardInterrupt, Interrupted):
                self.save_state()
                log.warning(
                    "interrupted: state saved to %s; rerun with "
                    "trainer.resume=true to continue",
                    self.state_path,
                )
                raise
            finally:
                self.writer.close()
        return self.out_dir / "best.pt"

    def train_epoch(self, on_step) -> None:
        p, cfg = self.progress, self.cfg
        self.model.train()
        self.dataset.epoch = p.epoch
        self.sampler.set_epoch(p.epoch, p.step_in_epoch)
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            collate_fn=collate,
            num_workers=cfg.data.num_workers,
            generator=self._loader_generator(),
            pin_memory=self.device.type == "cuda",
        )
        use_specaug = p.epoch >= cfg.augment.specaug_start_epoch
        bar = tqdm(
            loader,
            desc=f"epoch {p.epoch + 1}/{cfg.trainer.epochs}",
            disable=not cfg.trainer.progress,
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            if batch is not None:
                loss = self.last_loss = self.train_step(batch, use_specaug)
                bar.set_postfix(
                    loss=f"{loss:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}"
                )
            p.step_in_epoch += 1
            if on_step is not None:
                on_step(self)
            self.signals.check()  # a step boundary: stop here if asked to

    def _loader_generator(self) -> torch.Generator:
        """A DataLoader draws its workers' base seed when an epoch starts; from its
        own generator, so the global RNG (dropout, SpecAugment) stays in step
        with an interrupted-and-resumed run."""
        return torch.Generator().manual_seed(
            self.cfg.trainer.seed * 1000 + self.progress.epoch
        )

    def train_step(self, batch, use_specaug: bool) -> float:
        """One optimiser step. A batch that runs out of memory, or whose loss or
        gradient is not finite, is skipped, counted and logged."""
        try:
            return self._train_step(batch, use_specaug)
        except (torch.OutOfMemoryError, RuntimeError) as err:
            if not _is_oom(err):
                raise
            self.optimizer.zero_grad(set_to_none=True)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            self._skip(
                f"out of memory on a batch of {len(batch.indices)} "
                f"utterances ({batch.wavs.shape[1] / 16000:.1f} s long)"
            )
            self.scheduler.step()
            self.progress.global_step += 1
            return math.nan

    def _skip(self, why: str) -> None:
        self.progress.skipped_batches += 1
        log.warning(
            "skipped batch at step %d: %s (%d skipped so far)",
            self.progress.global_step,
            why,
            self.progress.skipped_batches,
        )

    def _train_step(self, batch, use_specaug: bool) -> float:
        batch = batch.to(self.device)
        with torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"
        ):
            feats, feat_lens = self.model.frontend(batch.wavs, batch.wav_lens)
            if use_specaug:
                feats = self.specaug(feats)
            log_probs, out_lens = self.model.forward_features(feats, feat_lens)
        loss = torch.nn.functional.ctc_loss(
            log_probs.float().transpose(0, 1),
            batch.targets,
            out_lens,
            batch.target_lens,
            blank=0,
            reduction="sum",
            zero_infinity=True,
        ) / len(batch.indices)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.cfg.optim.grad_clip
        )
        if not (torch.isfinite(loss) and torch.isfinite(norm)):
            self._skip("non-finite loss or gradient")
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.progress.global_step += 1
        if self.progress.global_step % 10 == 0:
            self.writer.add_scalar("train/loss", loss.item(), self.progress.global_step)
            self.writer.add_scalar(
                "train/lr", self.scheduler.get_last_lr()[0], self.progress.global_step
            )
            self.writer.add_scalar(
                "train/grad_norm", norm.item(), self.progress.global_step
            )
        return loss.item()

    def validate(self) -> dict:
        """Greedy-decode the dev set; WER and CER."""
        self.model.eval()
        utts = sorted(self.dev_utts, key=lambda u: u.duration)
        sampler = DurationBatchSampler(
            [u.duration for u in utts],
            self.cfg.data.max_batch_seconds * 2,
            shuffle=False,
        )
        ds = SpeechDataset(utts, self.tokenizer)
        greedy = Transcriber(self.model, self.tokenizer)
        refs, hyps = [], []
        for batch in torch.utils.data.DataLoader(
            ds,
            batch_sampler=sampler,
            collate_fn=collate,
            generator=self._loader_generator(),
        ):
            if batch is None:
                continue
            for i, hyp in zip(
                batch.indices, greedy.decode_batch(batch.wavs, batch.wav_lens)
            ):
                refs.append(utts[i].text)
                hyps.append(hyp.text)
        report = score(refs, hyps)
        return {"wer": report.wer, "cer": report.cer, "example": (refs[-1], hyps[-1])}

    def end_epoch(self) -> None:
        p = self.progress
        t0 = time.time()
        dev = self.validate()
        log.info(
            "epoch %d: dev WER %.2f%% CER %.2f%% (validation %.1fs) | %s -> %s",
            p.epoch + 1,
            100 * dev["wer"],
            100 * dev["cer"],
            time.time() - t0,
            *dev["example"],
        )
        self.writer.add_scalar("dev/wer", dev["wer"], p.epoch + 1)
        self.writer.add_scalar("dev/cer", dev["cer"], p.epoch + 1)
        p.history.append(
            {
                "epoch": p.epoch + 1,
                "step": p.global_step,
                "dev_wer": dev["wer"],
                "dev_cer": dev["cer"],
                "time": time.time(),
            }
        )
        meta = self.metadata(dev)
        save_model(self.out_dir / "last.pt", self.model, self.tokenizer, meta)
        if dev["wer"] <= p.best_wer:
            p.best_wer = dev["wer"]
            save_model(self.out_dir / "best.pt", self.model, self.tokenizer, meta)
        p.epoch += 1
        p.step_in_epoch = 0
        self.save_state()


def fit(cfg: TrainConfig, on_step: Callable[[Trainer], None] | None = None) -> Path:
    """Train (or resume) as configured; returns the path of the best checkpoint."""
    return Trainer(cfg).fit(on_step)


def _is_oom(err: BaseException) -> bool:
    text = str(err)
    return (
        isinstance(err, torch.OutOfMemoryError)
        or "out of memory" in text
        or ("can't allocate memory" in text)
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _as_tuple(x):
    """random.setstate needs tuples where a round trip may give lists."""
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


class _signals_interrupt:
    """While training, SIGINT and SIGTERM only raise a flag; the loop stops at the
    next step boundary, so the saved state is never half a step. A second signal
    stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self.old: dict = {}

    def __enter__(self):
        try:
            for sig in self.SIGNALS:
                self.old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            self.old = {}
        return self

    def _handle(self, signum, frame):
        if self.received is not None:
            raise Interrupted(f"signal {signum} (second)")
        self.received = signum

    def check(self) -> None:
        if self.received is not None:
            raise Interrupted(f"signal {self.received}")

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old)
