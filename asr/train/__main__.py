"""`asr-train`: the Hydra entry. Composes conf/, converts to dataclasses, calls fit.

asr-train --config-name an4 trainer.epochs=60 model.hidden_size=320
torchrun --nproc-per-node 2 -m asr.train --config-name an4 ...   # DDP, see README
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from asr.train.config import TrainConfig
from asr.train.distributed import close_distributed, env_world
from asr.train.trainer import fit

CONF_DIR = os.environ.get(
    "ASR_CONF_DIR", str(Path(__file__).resolve().parents[2] / "conf")
)


def to_train_config(cfg: DictConfig) -> TrainConfig:
    """Validate a composed config against the dataclasses and convert it."""
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


@hydra.main(config_path=CONF_DIR, config_name="an4", version_base="1.3")
def _run(cfg: DictConfig) -> None:
    if env_world()[0]:  # torchrun's other ranks: warnings and errors only
        logging.getLogger().setLevel(logging.WARNING)
    try:
        best = fit(to_train_config(cfg))
    finally:
        close_distributed()
    logging.getLogger(__name__).info("best checkpoint: %s", best)


# under torchrun, only rank 0 writes Hydra's log file and .hydra/ config copies
QUIET_RANK_OVERRIDES = ["hydra.output_subdir=null", "hydra/job_logging=stdout"]


def main() -> None:
    if env_world()[0]:
        given = {a.split("=")[0] for a in sys.argv[1:]}
        sys.argv += [o for o in QUIET_RANK_OVERRIDES if o.split("=")[0] not in given]
    _run()


if __name__ == "__main__":
    main()
