"""One markdown table of a Hydra multirun sweep: a row per run, from each run
folder's summary.json (written by training) and .hydra/overrides.yaml.

    python scripts/sweep_table.py exp/sweeps/an4 [--sort avg|best|last]

Columns: the overrides that differ between runs, epochs, the best epoch and its
dev WER, the last epoch's, the averaged last epochs' (when trained with
trainer.average_last) and the training time."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

# overrides that name paths or switches, not what a sweep compares
IGNORED = {
    "trainer.out_dir",
    "trainer.progress",
    "trainer.resume",
    "data.train_manifest",
    "data.dev_manifest",
    "data.cmvn_stats",
}


def read_runs(sweep_dir: Path) -> list[dict]:
    """Every finished run below sweep_dir: {"dir", "overrides", **summary}."""
    runs = []
    for summary in sorted(sweep_dir.rglob("summary.json")):
        run_dir = summary.parent
        overrides_file = run_dir / ".hydra" / "overrides.yaml"
        overrides = {}
        if overrides_file.is_file():
            for item in yaml.safe_load(overrides_file.read_text()) or []:
                key, _, value = str(item).partition("=")
                if key.lstrip("+~") not in IGNORED:
                    overrides[key.lstrip("+~")] = value
        runs.append(
            {
                "dir": str(run_dir),
                "overrides": overrides,
                **json.loads(summary.read_text()),
            }
        )
    return runs


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def table(runs: list[dict], sort: str = "avg") -> str:
    """Markdown: only the overrides whose value differs between runs get a column."""
    keys = sorted({k for r in runs for k in r["overrides"]})
    varying = [k for k in keys if len({r["overrides"].get(k) for r in runs}) > 1]
    key = {"avg": "avg_dev_wer", "best": "best_dev_wer", "last": "last_dev_wer"}[sort]
    runs = sorted(runs, key=lambda r: (r.get(key) is None, r.get(key) or 0.0))
    head = [*varying, "epochs", "best epoch", "best WER", "last WER", "avg WER", "min"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        cells = [r["overrides"].get(k, "(default)") for k in varying]
        avg = _pct(r.get("avg_dev_wer"))
        if r.get("averaged_epochs"):
            avg += f" ({r['averaged_epochs']})"
        cells += [
            str(r["epochs"]),
            str(r["best_epoch"]),
            _pct(r["best_dev_wer"]),
            _pct(r["last_dev_wer"]),
            avg,
            f"{r['train_seconds'] / 60:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    fixed = {k: runs[0]["overrides"][k] for k in keys if k not in varying}
    if fixed:
        lines.append("")
        lines.append("All runs: " + " ".join(f"`{k}={v}`" for k, v in fixed.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("--sort", choices=["avg", "best", "last"], default="avg")
    args = ap.parse_args(argv)
    runs = read_runs(args.sweep_dir)
    if not runs:
        print(f"{args.sweep_dir}: no finished runs (summary.json)", file=sys.stderr)
        return 1
    print(table(runs, args.sort))
    return 0


if __name__ == "__main__":
    sys.exit(main())
