"""Training: configs (config.py), the trainer (trainer.py) and what it is built
from (setup.py, loader.py, distributed.py, run_state.py, run_outputs.py,
validate.py), speaker adaptation (adapt.py); `python -m asr.train` (Hydra)."""
