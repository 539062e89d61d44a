"""fit(cfg): the CTC training loop with validation, checkpoints and exact resume."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from asr import __version__
from asr.audio.files import SAMPLE_RATE
from asr.data.dataset import SpeechDataset, noise_recordings
from asr.data.manifest import Manifest, read_manifest
from asr.data.sampler import DistributedDurationBatchSampler
from asr.features.edges import EdgeCrop, EdgePad, EdgeTrim
from asr.features.spec_augment import SpecAugment, VocalTractWarp
from asr.features.wave_augment import AdditiveNoise, BandLimit, RandomEQ
from asr.model.acoustic import ASRModel
from asr.model.checkpoint import atomic_save, save_model
from asr.model.device import pick_device
from asr.train.config import TrainConfig
from asr.train.distributed import init_distributed, wrap_ddp
from asr.train.loader import train_loader
from asr.train.run_outputs import average_last_epochs, keep_epoch, run_summary
from asr.train.run_state import (
    Interrupted,
    Progress,
    load_run_state,
    save_run_state,
    seed_everything,
    signals_interrupt,
)
from asr.train.setup import (
    TrainForward,
    amp_dtype,
    ctc_loss_sum,
    init_from_checkpoint,
    is_oom,
    lr_lambda,
    oom_message,
    training_cmvn_stats,
)
from asr.train.validate import log_epoch, validate_greedy
from asr.train.vocab import build_tokenizer, model_decoding

log = logging.getLogger(__name__)


class Trainer:
    """Owns model, optimiser, data and state for one run (see ``fit``)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg, tc = cfg, cfg.trainer
        if tc.threads:
            torch.set_num_threads(tc.threads)
        seed_everything(tc.seed)
        self.dist = init_distributed(tc.dist_backend, pick_device(tc.device))
        self.device = self.dist.device
        self.amp_dtype = amp_dtype(tc.precision, self.device)
        self.out_dir = Path(tc.out_dir)
        self.train_utts = Manifest(cfg.data.train_manifest)  # lazy: any corpus size
        self.dev_utts = read_manifest(cfg.data.dev_manifest)
        if tc.init_from:  # fine-tuning: weights, vocabulary and CMVN from there
            self.model, self.tokenizer = init_from_checkpoint(
                tc.init_from, cfg, self.train_utts.texts()
            )
        else:
            self.tokenizer = build_tokenizer(cfg.data, self.train_utts.texts())
            self.model = ASRModel(cfg.model, cfg.features, len(self.tokenizer))
        if not tc.init_from or cfg.data.cmvn_stats:
            self.model.frontend.cmvn.set_stats(*self._cmvn_stats())
        self.model.to(self.device)
        self.specaug = SpecAugment(cfg.augment)
        warp = VocalTractWarp.from_config(
            cfg.augment, cfg.features.sample_rate, cfg.features.n_mels
        )
        self.net: nn.Module = TrainForward(self.model, self.specaug, warp)
        if self.dist.active:
            self.net = wrap_ddp(self.net, self.device)
            if self.dist.rank:  # dropout and SpecAugment differ between ranks
                torch.manual_seed(tc.seed + 7919 * self.dist.rank)
        self.dataset = SpeechDataset(
            self.train_utts,
            self.tokenizer,
            cfg.augment.speed_factors,
            tc.seed,
            noise=AdditiveNoise.from_config(
                cfg.augment, noise_recordings(cfg.augment.noise_manifest)
            ),
            band_limit=BandLimit.from_config(cfg.augment),
            edge_trim=EdgeTrim.from_config(cfg.augment),
            edge_pad=EdgePad.from_config(cfg.augment),
            edge_crop=EdgeCrop.from_config(cfg.augment),
            eq=RandomEQ.from_config(cfg.augment),
        )
        self.sampler = DistributedDurationBatchSampler(
            self.train_utts.durations,
            cfg.data.max_batch_seconds,
            cfg.data.max_batch_size,
            shuffle=True,
            sortagrad=cfg.data.sortagrad,
            seed=tc.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.loader = train_loader(
            self.dataset, self.sampler, cfg.data, self.device, tc.seed
        )
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=o.lr,
            betas=tuple(o.betas),
            weight_decay=o.weight_decay,
        )
        total = tc.epochs * self.sampler.steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(o, total)
        )
        self.progress = Progress()
        self.last_loss = math.nan
        self.writer = None
        self.signals = signals_interrupt()
        self.stop_agreed = False  # distributed: some rank was asked to stop
        self.epoch_stats: dict = {}

    def _cmvn_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        return training_cmvn_stats(self.cfg, self.train_utts)

    # ---- state ---------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.out_dir / "last.state.pt"

    def save_state(self) -> None:
        """Everything needed to continue exactly here (kept apart from the model)."""
        parts = (self.model, self.optimizer, self.scheduler)
        save_run_state(self.state_path, self.dist, *parts, self.progress)

    def load_state(self) -> None:
        parts = (self.model, self.optimizer, self.scheduler)
        self.progress = load_run_state(self.state_path, self.dist, *parts)

    def metadata(self, dev: dict) -> dict:
        return {
            "train_manifest": self.cfg.data.train_manifest,
            "n_train_utterances": len(self.train_utts),
            "epochs_trained": self.progress.epoch + 1,
            "steps": self.progress.global_step,
            "dev_wer": dev["wer"],
            "dev_cer": dev["cer"],
            "asr_version": __version__,
            "config": dataclasses.asdict(self.cfg),
            "decoding": model_decoding(self.tokenizer),
        }

    # ---- loop ----------------------------------------------------------------
    def fit(self, on_step: Callable[[Trainer], None] | None = None) -> Path:
        tc, main = self.cfg.trainer, self.dist.is_main
        if main:
            for stale in self.out_dir.glob(".*.pt.*"):  # a write cut short by kill -9
                stale.unlink(missing_ok=True)
        if tc.resume and self.dist.broadcast(main and self.state_path.is_file()):
            self.load_state()
        if main:
            # lazily, for start-up: TensorBoard is slow to import, rank 0 only
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        with signals_interrupt() as self.signals:
            try:
                while self.progress.epoch < tc.epochs:
                    self.train_epoch(on_step)
                    self.end_epoch()
                    self.check_stop()
            except (KeyboardInterrupt, Interrupted):
                self.save_state()
                log.warning(
                    "interrupted: state saved to %s; rerun with "
                    "trainer.resume=true to continue",
                    self.state_path,
                )
                raise
            finally:
                if self.writer is not None:
                    self.writer.close()
        if main:
            self.finish()
        return self.out_dir / "best.pt"

    def finish(self) -> None:
        """After the last epoch: average the last epochs' weights if asked
        (avg.pt, validated on dev), and write summary.json (one run's results,
        for sweep tables)."""
        tc = self.cfg.trainer
        summary = run_summary(self.progress)
        averaged = average_last_epochs(self.out_dir, tc.average_last)
        if averaged is not None:
            self.model.load_state_dict(averaged["state_dict"])
            dev = self.validate()
            log.info(
                "average of the last %d epochs: dev %s %.2f%% CER %.2f%% -> %s",
                tc.average_last,
                dev["label"],
                100 * dev["wer"],
                100 * dev["cer"],
                self.out_dir / "avg.pt",
            )
            summary.update(averaged_epochs=tc.average_last, avg_dev_wer=dev["wer"])
            # its own dev figures, not those of the last epoch it copied them from
            averaged["metadata"].update(dev_wer=dev["wer"], dev_cer=dev["cer"])
            if self.dist.is_main:
                atomic_save(averaged, self.out_dir / "avg.pt")
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")

    def train_epoch(self, on_step) -> None:
        p, cfg = self.progress, self.cfg
        self.model.train()
        self.dataset.epoch = p.epoch
        self.sampler.set_epoch(p.epoch, p.step_in_epoch)
        use_specaug = p.epoch >= cfg.augment.specaug_start_epoch
        bar = tqdm(
            self.loader,
            desc=f"epoch {p.epoch + 1}/{cfg.trainer.epochs}",
            disable=not (cfg.trainer.progress and self.dist.is_main),
            leave=False,
            dynamic_ncols=True,
        )
        t0, audio, losses = time.perf_counter(), 0.0, []
        for batch in bar:
            # distributed, every rank steps: a rank without a batch still takes
            # part in the step's collectives (and the step is skipped by all)
            if batch is not None or self.dist.active:
                loss = self.last_loss = self.train_step(batch, use_specaug)
                losses.append(loss)
                audio += 0 if batch is None else batch.wav_lens.sum().item()
                bar.set_postfix(
                    loss=f"{loss:.3f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}"
                )
            p.step_in_epoch += 1
            if on_step is not None:
                on_step(self)
            self.check_stop(self.stop_agreed)  # a step boundary: stop if asked to
        finite = [x for x in losses if math.isfinite(x)]
        self.epoch_stats = {
            "train_loss": sum(finite) / max(1, len(finite)),
            "train_seconds": time.perf_counter() - t0,
            "audio_seconds": self.dist.sum([audio / SAMPLE_RATE])[0],
        }

    def check_stop(self, agreed: bool | None = None) -> None:
        """Raise Interrupted if a signal came. Distributed, all ranks stop at the
        same boundary: when any rank had one (``agreed``, else asked here)."""
        if not self.dist.active:
            self.signals.check()
            return
        if agreed is None:
            agreed = self.dist.sum([self.signals.received is not None])[0] > 0
        if agreed:
            raise Interrupted("a signal on one of the ranks")

    def train_step(self, batch, use_specaug: bool) -> float:
        """One optimiser step. A batch that runs out of memory, or whose loss or
        gradient is not finite, is skipped, counted and logged."""
        try:
            if self.dist.active:
                return self._distributed_step(batch, use_specaug)
            return self._update(self._loss_sum(batch, use_specaug) / len(batch.indices))
        except (torch.OutOfMemoryError, RuntimeError) as err:
            # distributed, only a forward's OOM is survivable (_distributed_step)
            if not is_oom(err) or self.dist.active:
                raise
            return self._skip_step(oom_message(batch))

    def _skip_step(self, why: str) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self._skip(why)
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

    def autocast(self) -> torch.autocast:
        """bf16 autocast where configured (CUDA by default); fp32 otherwise."""
        dtype = self.amp_dtype or torch.bfloat16
        return torch.autocast(
            self.device.type, dtype, enabled=self.amp_dtype is not None
        )

    def _loss_sum(self, batch, use_specaug: bool) -> torch.Tensor:
        """The batch's CTC loss summed over its utterances (a 0-dim tensor)."""
        batch = batch.to(self.device)
        with self.autocast():
            log_probs, out_lens, inter = self.net(
                batch.wavs, batch.wav_lens, use_specaug
            )
        return ctc_loss_sum(
            self.model, log_probs, out_lens, inter, batch.targets, batch.target_lens
        )

    def _distributed_step(self, batch, use_specaug: bool) -> float:
        """All ranks agree before backward, in one all-reduce: on the global batch
        size (the loss is the mean over the global batch, whatever the shares), on
        skipping a step that failed on any rank, and on stopping; so no rank is
        ever left alone in a collective."""
        loss_sum, why = torch.zeros((), device=self.device), "no readable audio"
        if batch is not None:
            try:
                loss_sum, why = self._loss_sum(batch, use_specaug), ""
            except (torch.OutOfMemoryError, RuntimeError) as err:
                if not is_oom(err):
                    raise
                why = oom_message(batch)
        n_local = 0 if why else len(batch.indices)
        asked = self.signals.received is not None
        total, n, failed, stop = self.dist.sum(
            [loss_sum.detach(), n_local, bool(why), asked]
        )
        self.stop_agreed = stop > 0
        if failed:
            return self._skip_step(why or "a batch failed on another rank")
        # DDP averages the ranks' gradients: scaled so, they are the global mean's
        loss = loss_sum / (n / self.dist.world_size)
        return self._update(loss, torch.tensor(total / n))

    def _update(
        self, loss: torch.Tensor, reported: torch.Tensor | None = None
    ) -> float:
        """Backward and optimiser step; ``reported`` (default ``loss``) is the loss
        that is logged and checked (distributed: the global batch's)."""
        reported = loss if reported is None else reported
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.cfg.optim.grad_clip
        )
        if not (torch.isfinite(reported) and torch.isfinite(norm)):
            self._skip("non-finite loss or gradient")
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.progress.global_step += 1
        if self.progress.global_step % 10 == 0 and self.writer is not None:
            self.writer.add_scalar(
                "train/loss", reported.item(), self.progress.global_step
            )
            self.writer.add_scalar(
                "train/lr", self.scheduler.get_last_lr()[0], self.progress.global_step
            )
            self.writer.add_scalar(
                "train/grad_norm", norm.item(), self.progress.global_step
            )
        return reported.item()

    def validate(self) -> dict:
        """Greedy WER and CER on the dev set (every rank takes its share)."""
        self.model.eval()
        with self.autocast():
            return validate_greedy(
                self.model,
                self.tokenizer,
                self.dev_utts,
                self.cfg.data.max_batch_seconds * 2,
                self.dist,
            )

    def end_epoch(self) -> None:
        """Validate; rank 0 logs and writes the checkpoints; all save the state."""
        p, main, stats = self.progress, self.dist.is_main, self.epoch_stats
        t0 = time.time()
        dev = self.validate()
        log_epoch(self.writer, p.epoch + 1, stats, dev, time.time() - t0)
        p.history.append(
            {
                "epoch": p.epoch + 1,
                "step": p.global_step,
                "dev_wer": dev["wer"],
                "dev_cer": dev["cer"],
                "time": time.time(),
                **stats,
            }
        )
        meta = self.metadata(dev)
        if main:
            save_model(self.out_dir / "last.pt", self.model, self.tokenizer, meta)
            tc = self.cfg.trainer
            keep = max(tc.keep_last, tc.average_last)  # epochs/NNN.pt
            n = p.epoch + 1
            keep_epoch(self.out_dir, n, keep, self.model, self.tokenizer, meta)
        if dev["wer"] <= p.best_wer:
            p.best_wer = dev["wer"]
            if main:
                save_model(self.out_dir / "best.pt", self.model, self.tokenizer, meta)
        p.epoch += 1
        self.epoch_stats = {}
        p.step_in_epoch = 0
        self.save_state()


def fit(cfg: TrainConfig, on_step: Callable[[Trainer], None] | None = None) -> Path:
    """Train (or resume) as configured; returns the path of the best checkpoint."""
    return Trainer(cfg).fit(on_step)
