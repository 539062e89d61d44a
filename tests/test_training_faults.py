"""Training survives faults: bad batches, out-of-memory, SIGTERM, kill -9."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asr.model.checkpoint import load_model, safe_load
from asr.train.trainer import Trainer
from tests.conftest import ROOT
from tests.test_training import tiny_config


class Faulty:
    """Wraps forward_train (the training forward): the n-th call fails in the
    given way."""

    def __init__(self, model, n: int, kind: str):
        self.inner, self.n, self.kind, self.calls = model.forward_train, n, kind, 0

    def __call__(self, feats, lens):
        self.calls += 1
        log_probs, out_lens, inter = self.inner(feats, lens)
        if self.calls == self.n and self.kind == "nan":
            return log_probs * float("nan"), out_lens, inter
        if self.calls == self.n and self.kind == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
        return log_probs, out_lens, inter


@pytest.mark.parametrize("kind", ["nan", "oom"])
def test_a_bad_batch_is_skipped_and_counted(an4_manifest, tmp_path, kind, caplog):
    trainer = Trainer(tiny_config(an4_manifest, tmp_path / "run", 2, augment=False))
    faulty = Faulty(trainer.model, 2, kind)
    trainer.model.forward_train = faulty
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    seen = []

    def check(t):
        seen.append({k: v.clone() for k, v in t.model.state_dict().items()})

    trainer.fit(on_step=check)
    assert trainer.progress.skipped_batches == 1
    assert "skipped batch" in caplog.text
    # the skipped step left the weights as they were, and nothing is poisoned
    first, second = seen[0], seen[1]
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(before[k], first[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in trainer.model.state_dict().values())
    assert math.isfinite(trainer.last_loss)


def test_other_runtime_errors_are_not_swallowed(an4_manifest, tmp_path):
    trainer = Trainer(tiny_config(an4_manifest, tmp_path / "run", 1, augment=False))

    def broken(feats, lens):
        raise RuntimeError("shape mismatch in a bug")

    trainer.model.forward_train = broken
    with pytest.raises(RuntimeError, match="shape mismatch"):
        trainer.fit()


def big_manifest(an4_manifest: Path, tmp_path: Path) -> Path:
    """The bundled clips four times over: 10 batches an epoch."""
    lines = an4_manifest.read_text().splitlines() * 4
    out = tmp_path / "train.jsonl"
    out.write_text("\n".join(lines) + "\n")
    return out


def train_command(manifest: Path, out_dir: Path, resume: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "asr.train",
        "model=bilstm_s",
        f"data.train_manifest={manifest}",
        f"data.dev_manifest={manifest}",
        "data.max_batch_seconds=6",
        "data.max_batch_size=2",
        "data.num_workers=0",
        "trainer.epochs=4",
        "trainer.device=cpu",
        "trainer.progress=false",
        "trainer.threads=1",
        "augment.specaug_start_epoch=1",
        f"trainer.out_dir={out_dir}",
        f"trainer.resume={str(resume).lower()}",
    ]


def weights(path: Path) -> dict:
    return load_model(path)[0].state_dict()


def interrupted_then_resumed(manifest, out_dir: Path, sig: int, after: float):
    """Start a 4-epoch run, send ``sig`` ``after`` (a fraction) of an epoch into
    its third epoch, check the state on disk, resume; the saved progress."""
    proc = subprocess.Popen(
        train_command(manifest, out_dir, False),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    state = out_dir / "last.state.pt"

    def saved_at() -> int | None:  # the state is rewritten at every epoch's end
        try:
            return state.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    deadline = time.monotonic() + 120
    while saved_at() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    first, t0 = saved_at(), time.monotonic()
    while saved_at() == first and time.monotonic() < deadline:
        time.sleep(0.01)
    # ``after`` of an epoch into the third of four, however fast the machine is (a
    # fixed delay let an idle machine finish all four first)
    time.sleep(after * (time.monotonic() - t0))
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0  # it did not finish on its own
    progress = safe_load(state)["progress"]  # loadable whatever the moment
    assert progress["epoch"] < 4
    subprocess.run(
        train_command(manifest, out_dir, True),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return progress


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    import soundfile as sf

    from asr.data.manifest import Utterance, write_manifest
    from tests.conftest import clip_rows

    tmp = tmp_path_factory.mktemp("straight")
    utts = [Utterance(str(p), sf.info(str(p)).duration, t) for p, t in clip_rows()]
    write_manifest(tmp / "clips.jsonl", utts)
    manifest = big_manifest(tmp / "clips.jsonl", tmp)
    subprocess.run(
        train_command(manifest, tmp / "run", False),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
    )
    return manifest, weights(tmp / "run" / "last.pt")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_resumes_to_the_same_weights(straight_run, tmp_path, sig):
    manifest, expected = straight_run
    progress = interrupted_then_resumed(manifest, tmp_path / "run", sig, after=0.5)
    if sig == signal.SIGTERM:  # saved where it stopped, often inside an epoch
        assert progress["global_step"] > 10 * progress["epoch"] - 1
    got = weights(tmp_path / "run" / "last.pt")
    for k in expected:
        assert torch.equal(expected[k], got[k]), k
    assert not list((tmp_path / "run").glob(".*.pt.*"))  # no temporary files left
    assert os.path.getsize(tmp_path / "run" / "best.pt") > 0
