"""CUDA checks (``pytest -m gpu``), skipped without a GPU; scripts/gpu_check.sh runs
them on a lent GPU machine."""

from __future__ import annotations

import math

import pytest
import torch

from asr.data.dataset import collate
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.train.trainer import Trainer
from asr.transcribe import Transcriber
from tests.conftest import clip_rows
from tests.test_training import tiny_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def cuda_trainer(manifest, out_dir) -> Trainer:
    cfg = tiny_config(manifest, out_dir, epochs=1, augment=True)
    cfg.trainer.device = "cuda"
    cfg.model.dropout = 0.0
    return Trainer(cfg)


def test_bf16_is_the_cuda_default_and_close_to_fp32(an4_manifest, tmp_path):
    trainer = cuda_trainer(an4_manifest, tmp_path / "run")
    assert trainer.amp_dtype == torch.bfloat16
    batch = collate([trainer.dataset[i] for i in range(len(trainer.dataset))])
    with torch.no_grad():
        bf16 = trainer._loss_sum(batch, use_specaug=False).item()
        trainer.amp_dtype = None
        fp32 = trainer._loss_sum(batch, use_specaug=False).item()
    assert math.isfinite(bf16) and bf16 == pytest.approx(fp32, rel=0.05)


def test_a_cuda_bf16_step_trains_on_the_gpu(an4_manifest, tmp_path):
    trainer = cuda_trainer(an4_manifest, tmp_path / "run")
    batch = next(iter(trainer.loader))
    assert batch.wavs.is_pinned()  # pinned, for non-blocking copies
    before = [p.detach().clone() for p in trainer.model.parameters()]
    losses = [trainer.train_step(batch, use_specaug=True) for _ in range(3)]
    assert all(math.isfinite(x) for x in losses)
    assert trainer.progress.skipped_batches == 0
    after = list(trainer.model.parameters())
    assert all(p.device.type == "cuda" and torch.isfinite(p).all() for p in after)
    assert any(not torch.equal(p, b) for p, b in zip(after, before))
    assert trainer.model.frontend.cmvn.mean.device.type == "cuda"  # features on GPU


def test_intermediate_ctc_on_cuda_matches_the_cpu_loss(an4_manifest, tmp_path):
    """On CUDA the encoder runs packed (cuDNN); the mixed loss must agree with the
    CPU's padded run of the same weights."""
    from tests.test_training import inter_config

    cfg = inter_config(an4_manifest, tmp_path / "cpu", weight=0.3)
    cpu = Trainer(cfg)
    cfg.trainer.device, cfg.trainer.out_dir = "cuda", str(tmp_path / "cuda")
    gpu = Trainer(cfg)
    gpu.amp_dtype = None  # fp32, to compare
    gpu.model.load_state_dict(cpu.model.state_dict())
    batch = collate([cpu.dataset[i] for i in range(len(cpu.dataset))])
    with torch.no_grad():
        on_cpu = cpu._loss_sum(batch, use_specaug=False).item()
        on_gpu = gpu._loss_sum(batch, use_specaug=False).item()
    assert on_gpu == pytest.approx(on_cpu, rel=1e-3)


def test_cuda_transcripts_match_cpu():
    model, tokenizer, _ = load_model(default_model_path())
    paths = [p for p, _ in clip_rows()]
    cpu = [t.text for t in Transcriber(model, tokenizer).transcribe_files(paths)]
    cuda_model = load_model(default_model_path(), device="cuda")[0]
    cuda = [t.text for t in Transcriber(cuda_model, tokenizer).transcribe_files(paths)]
    assert cuda == cpu


def test_adaptation_runs_on_cuda_and_lowers_the_loss_as_on_cpu():
    from asr.data.manifest import Utterance
    from asr.train.adapt import AdaptConfig, adapt

    utts = [Utterance(str(p), 1.0, text, "an4") for p, text in clip_rows()]
    cfg = AdaptConfig(steps=8, specaug=False, speed_factors=(1.0,))
    losses = {}
    for device in ("cpu", "cuda"):
        model, tokenizer, _ = load_model(default_model_path(), device=device)
        for m in model.modules():  # the same loss on both: no random masks
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        losses[device] = adapt(model, tokenizer, utts, cfg).losses
        assert next(model.parameters()).device.type == device and not model.training
    assert losses["cuda"][-1] < losses["cuda"][0]
    assert losses["cuda"][0] == pytest.approx(losses["cpu"][0], rel=1e-3)
