"""`asr-train`: the Hydra entry. Composes conf/, converts to dataclasses, calls fit.

asr-train --config-name an4 trainer.epochs=60 model.hidden_size=320
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from asr.config import TrainConfig
from asr.training import fit

CONF_DIR = os.environ.get(
    "ASR_CONF_DIR", str(Path(__file__).resolve().parent.parent / "conf")
)


def to_train_config(cfg: DictConfig) -> TrainConfig:
    """Validate a composed config against the dataclasses and convert it."""
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


@hydra.main(config_path=CONF_DIR, config_name="an4", version_base="1.3")
def _run(cfg: DictConfig) -> None:
    best = fit(to_train_config(cfg))
    logging.getLogger(__name__).info("best checkpoint: %s", best)


def main() -> None:
    _run()


if __name__ == "__main__":
    main()
