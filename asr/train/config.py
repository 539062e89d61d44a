"""Training configuration: one dataclass per concern, composed by Hydra (conf/)."""

from __future__ import annotations

from dataclasses import dataclass, field

from asr.features.augment import AugmentConfig
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ModelConfig


@dataclass
class DataConfig:
    train_manifest: str = "???"
    dev_manifest: str = "???"
    cmvn_stats: str = ""  # file from `asr stats`; empty: computed at start
    cmvn_max_utterances: int = 2000  # computed at start: a random sample; 0: all
    max_batch_seconds: float = 60.0  # per process when distributed
    max_batch_size: int = 0  # 0: no cap besides seconds
    num_workers: int = 0  # loader processes per rank; -1: auto (see asr.train.loader)
    prefetch_factor: int = 0  # batches each worker keeps ready; 0: auto
    persistent_workers: bool = True  # keep the workers from epoch to epoch
    sortagrad: bool = True  # first epoch short-to-long
    # what the model spells: char (its training texts' characters) or phone
    # (ARPAbet through the CMU dictionary; decoded with a lexicon and word LM)
    units: str = "char"
    # a phone model's own pronunciations (CMUdict format) for training words the
    # CMU dictionary lacks, e.g. from recipes/english/lexicon.py
    lexicon: str = ""

    def __post_init__(self) -> None:
        if self.units not in ("char", "phone"):
            raise ValueError(f"data.units must be char or phone, not {self.units!r}")


@dataclass
class OptimConfig:
    lr: float = 1.5e-3  # peak learning rate
    weight_decay: float = 1e-2
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    warmup_steps: int = 300
    final_lr_ratio: float = 0.02  # cosine decay ends at lr * this
    grad_clip: float = 5.0


@dataclass
class TrainerConfig:
    out_dir: str = "exp/run"
    epochs: int = 40
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch intra-op threads; 0: torch's default
    resume: bool = False
    init_from: str = ""  # checkpoint to fine-tune (same model config and alphabet)
    # fine-tuning on texts with characters the checkpoint lacks (e.g. the
    # apostrophe): append them to its vocabulary instead of stopping
    init_add_chars: bool = False
    progress: bool = True
    keep_last: int = 0  # also keep the last K epochs' weights (epochs/NNN.pt)
    average_last: int = 0  # at the end: avg.pt = mean of the last K epochs' weights
    precision: str = "auto"  # auto (bf16 autocast on CUDA, else fp32) | bf16 | fp32
    dist_backend: str = "auto"  # WORLD_SIZE > 1: auto (CUDA: nccl, CPU: gloo) | ...

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(
                f"trainer.precision must be auto, bf16 or fp32, not {self.precision!r}"
            )


@dataclass
class TrainConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
