"""Train the AN4 recipe for a few epochs on one device and report what the GPU does:
train loss per epoch (it must fall), audio seconds per second, epoch time and peak
GPU memory. Run by scripts/gpu_check.sh; exit status 1 if the loss did not fall.

python scripts/gpu_check.py --train T.jsonl --dev D.jsonl --epochs 3 --out DIR
python scripts/gpu_check.py --clips DIR   # writes a manifest of the bundled clips
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIP_COPIES = 12  # the bundled clips, repeated: a few steps an epoch


def write_clip_manifests(out: Path) -> None:
    """train.jsonl (the bundled AN4 clips and test digits, repeated) and dev.jsonl."""
    import soundfile as sf

    from asr.data.manifest import Utterance, write_manifest
    from asr.model.bundled import default_model_path

    clips = default_model_path().parent / "clips"
    rows = [r.split("\t") for r in (clips / "references.tsv").read_text().split("\n")]
    utts = [
        Utterance(str(clips / name), sf.info(str(clips / name)).duration, text)
        for name, text in (r for r in rows if len(r) == 2)
    ]
    digits = {"3_jackson_0.wav": "three", "7_lucas_1.wav": "seven"}
    for name, text in digits.items():
        path = ROOT / "tests" / "data" / name
        utts.append(Utterance(str(path), sf.info(str(path)).duration, text))
    write_manifest(out / "train.jsonl", utts * CLIP_COPIES)
    write_manifest(out / "dev.jsonl", utts)


def train_config(args: argparse.Namespace):
    from hydra import compose, initialize_config_dir

    from asr.train.__main__ import CONF_DIR, to_train_config

    overrides = [
        f"data.train_manifest={args.train}",
        f"data.dev_manifest={args.dev}",
        f"trainer.epochs={args.epochs}",
        f"trainer.device={args.device}",
        f"trainer.out_dir={args.out}",
        "trainer.progress=false",
        *args.overrides,
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return to_train_config(compose(config_name="an4", overrides=overrides))


def report(trainer, wall: float) -> bool:
    """Print a line per epoch and the totals; True if the train loss fell."""
    import torch

    history = trainer.progress.history
    for h in history:
        print(
            f"epoch {h['epoch']}: train loss {h['train_loss']:.3f}, "
            f"{h['audio_seconds']:.0f} s of audio in {h['train_seconds']:.2f} s "
            f"({h['audio_seconds'] / h['train_seconds']:.0f} audio s/s), "
            f"dev WER {100 * h['dev_wer']:.1f}%"
        )
    later = history[1:] or history
    best = min(later, key=lambda h: h["train_seconds"])
    print(
        f"throughput: {best['audio_seconds'] / best['train_seconds']:.0f} audio s/s"
        f" (fastest epoch after the first: {best['train_seconds']:.2f} s);"
        f" whole run {wall:.1f} s; precision {trainer.amp_dtype or torch.float32}"
    )
    if trainer.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(trainer.device) / 2**30
        print(f"peak GPU memory: {peak:.2f} GiB ({torch.cuda.get_device_name()})")
    fell = history[-1]["train_loss"] < history[0]["train_loss"]
    print(
        "loss fell" if fell else "FAIL: the train loss did not fall",
        f"({history[0]['train_loss']:.3f} -> {history[-1]['train_loss']:.3f})",
    )
    return fell


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path)
    ap.add_argument("--dev", type=Path)
    ap.add_argument("--clips", type=Path, help="write clip manifests here and stop")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("/tmp/asr_gpu_check/run"))
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=bilstm_s")
    args = ap.parse_args()
    if args.clips:
        write_clip_manifests(args.clips)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch

    from asr.train.trainer import Trainer

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("FAIL: no CUDA device", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    trainer = Trainer(train_config(args))
    trainer.fit()
    return 0 if report(trainer, time.perf_counter() - t0) else 1


if __name__ == "__main__":
    sys.exit(main())
