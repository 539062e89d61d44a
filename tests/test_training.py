from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from asr.data.dataset import collate
from asr.features.augment import AugmentConfig
from asr.features.edges import EdgeTrim
from asr.model.acoustic import ModelConfig
from asr.model.checkpoint import load_model, safe_load
from asr.train.config import DataConfig, OptimConfig, TrainConfig, TrainerConfig
from asr.train.trainer import Trainer, fit
from tests.conftest import band_energy


def tiny_config(manifest, out_dir, epochs: int, augment: bool) -> TrainConfig:
    aug = (
        AugmentConfig(specaug_start_epoch=1)
        if augment
        else AugmentConfig(speed_factors=[], freq_masks=0, time_masks=0)
    )
    return TrainConfig(
        model=ModelConfig(conv_channels=8, hidden_size=64, n_layers=2, dropout=0.1),
        data=DataConfig(
            train_manifest=str(manifest),
            dev_manifest=str(manifest),
            max_batch_seconds=6.0,
            max_batch_size=2,
        ),
        optim=OptimConfig(lr=3e-3, warmup_steps=5),
        augment=aug,
        trainer=TrainerConfig(
            out_dir=str(out_dir), epochs=epochs, seed=7, device="cpu", progress=False
        ),
    )


def dataset_loss(trainer: Trainer) -> float:
    """Mean CTC loss per utterance over the training clips, eval mode."""
    trainer.model.eval()
    batch = collate([trainer.dataset[i] for i in range(len(trainer.dataset))])
    with torch.no_grad():
        log_probs, lens = trainer.model(batch.wavs, batch.wav_lens)
        loss = torch.nn.functional.ctc_loss(
            log_probs.transpose(0, 1),
            batch.targets,
            lens,
            batch.target_lens,
            reduction="sum",
            zero_infinity=True,
        )
    return loss.item() / len(batch.indices)


def test_overfit_real_clips_loss_falls(an4_manifest, tmp_path):
    cfg = tiny_config(an4_manifest, tmp_path / "run", epochs=40, augment=False)
    cfg.data.max_batch_seconds, cfg.data.max_batch_size = 30.0, 0  # one batch
    cfg.optim.lr = 5e-3
    trainer = Trainer(cfg)
    before = dataset_loss(trainer)
    best = trainer.fit()
    after = dataset_loss(trainer)
    assert before > 100  # an untrained model: ~T * log(V) per utterance
    assert after < 0.25 * before, (before, after)
    model, tok, meta = load_model(best)
    assert meta["epochs_trained"] >= 1 and 0 <= meta["dev_wer"] <= 1.5
    assert safe_load(tmp_path / "run" / "last.state.pt")["progress"]["epoch"] == 40


class StopAt:
    def __init__(self, step: int):
        self.step = step

    def __call__(self, trainer: Trainer) -> None:
        if trainer.progress.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(an4_manifest, tmp_path):
    straight = tiny_config(an4_manifest, tmp_path / "a", epochs=3, augment=True)
    fit(straight)
    broken = tiny_config(an4_manifest, tmp_path / "b", epochs=3, augment=True)
    with pytest.raises(KeyboardInterrupt):
        fit(broken, on_step=StopAt(5))  # mid-way through the 2nd epoch (3 batches)
    state = safe_load(tmp_path / "b" / "last.state.pt")
    assert state["progress"]["epoch"] == 1 and state["progress"]["step_in_epoch"] == 2
    broken.trainer.resume = True
    fit(broken)
    a = load_model(tmp_path / "a" / "last.pt")[0].state_dict()
    b = load_model(tmp_path / "b" / "last.pt")[0].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_fine_tuning_starts_from_the_checkpoint_weights(an4_manifest, tmp_path):
    from asr.model.bundled import default_model_path

    cfg = tiny_config(an4_manifest, tmp_path / "ft", epochs=1, augment=False)
    bundled, tokenizer, _ = load_model(default_model_path())
    # another dropout or intermediate-CTC loss is no other architecture
    cfg.model = dataclasses.replace(
        bundled.cfg,
        dropout=bundled.cfg.dropout + 0.1,
        inter_ctc_weight=0.3,
        inter_ctc_layer=1,
    )
    cfg.features = bundled.feature_cfg
    cfg.trainer.init_from = str(default_model_path())
    trainer = Trainer(cfg)
    assert trainer.tokenizer.symbols == tokenizer.symbols
    for (name, a), b in zip(
        trainer.model.state_dict().items(), bundled.float().state_dict().values()
    ):
        assert torch.equal(a, b), name  # CMVN buffers included


def test_fine_tuning_refuses_a_different_architecture_or_alphabet(
    an4_manifest, tmp_path
):
    from asr.model.bundled import default_model_path

    cfg = tiny_config(an4_manifest, tmp_path / "ft", epochs=1, augment=False)
    cfg.trainer.init_from = str(default_model_path())
    with pytest.raises(ValueError, match="model config"):
        Trainer(cfg)  # tiny config vs the bundled 3 x 320
    bundled = load_model(default_model_path())[0]
    cfg.model = bundled.cfg
    lines = an4_manifest.read_text().splitlines()
    an4_manifest.write_text(
        "\n".join(lines + [lines[0].replace('"text": "', '"text": "ça ')]) + "\n"
    )
    with pytest.raises(ValueError, match="lacks"):
        Trainer(cfg)


def test_fine_tuning_can_add_characters_the_checkpoint_lacks(an4_manifest, tmp_path):
    from asr.model.bundled import default_model_path

    cfg = tiny_config(an4_manifest, tmp_path / "ft", epochs=1, augment=False)
    bundled, tokenizer, _ = load_model(default_model_path())
    cfg.model, cfg.features = bundled.cfg, bundled.feature_cfg
    cfg.trainer.init_from = str(default_model_path())
    cfg.trainer.init_add_chars = True
    lines = an4_manifest.read_text().splitlines()
    extra = lines[0].replace('"text": "', '"text": "don\'t ')
    an4_manifest.write_text("\n".join([*lines, extra]) + "\n")
    trainer = Trainer(cfg)
    assert "'" not in tokenizer.symbols
    assert trainer.tokenizer.symbols == [*tokenizer.symbols, "'"]  # old ids kept
    head = trainer.model.state_dict()
    old = bundled.float().state_dict()
    n = len(tokenizer)
    assert torch.equal(head["head.proj.weight"][:n], old["head.proj.weight"])
    assert torch.equal(head["head.proj.bias"][:n], old["head.proj.bias"])
    assert not head["head.proj.weight"][n:].any()
    assert head["head.proj.bias"][n] == old["head.proj.bias"][1:].min()
    # the grown model reads audio as the checkpoint did
    wav = torch.randn(1, 16000) * 0.1
    lens = torch.tensor([16000])
    trainer.model.eval()
    with torch.no_grad():
        grown = trainer.model(wav, lens)[0][..., :n].argmax(-1)
        before = bundled.float().eval()(wav, lens)[0].argmax(-1)
    assert torch.equal(grown, before)


def test_last_epochs_are_kept_averaged_and_summarised(
    an4_manifest, tmp_path, monkeypatch
):
    import json

    from asr.train.trainer import Trainer

    validate, calls = Trainer.validate, []

    def distinct(self):  # a tiny model's WER is 100% everywhere: make each differ
        calls.append(1)
        return {**validate(self), "wer": 0.5 + len(calls) / 100}

    monkeypatch.setattr(Trainer, "validate", distinct)
    cfg = tiny_config(an4_manifest, tmp_path / "avg", epochs=4, augment=False)
    cfg.trainer.average_last = 3
    fit(cfg)
    out = tmp_path / "avg"
    kept = sorted(p.name for p in (out / "epochs").glob("*.pt"))
    assert kept == ["002.pt", "003.pt", "004.pt"]  # older epochs pruned
    states = [load_model(out / "epochs" / name)[0].state_dict() for name in kept]
    avg_model, _, meta = load_model(out / "avg.pt")
    assert len(meta["averaged_from"]) == 3
    for key, value in avg_model.state_dict().items():
        if value.is_floating_point():
            mean = sum(s[key] for s in states) / 3
            torch.testing.assert_close(value, mean, rtol=1e-5, atol=1e-6)
            if "lstm" in key or "rnn" in key:
                assert not torch.equal(value, states[-1][key]), key  # really averaged
    assert torch.equal(
        load_model(out / "last.pt")[0].state_dict()[key], states[-1][key]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 4 and summary["averaged_epochs"] == 3
    assert 1 <= summary["best_epoch"] <= 4
    # the epoch best.pt holds (ties go to the later epoch, as best.pt does)
    assert summary["best_epoch"] == load_model(out / "best.pt")[2]["epochs_trained"]
    assert 0 <= summary["avg_dev_wer"] <= 1.5 and summary["train_seconds"] > 0
    assert meta["dev_wer"] == summary["avg_dev_wer"]  # the average's, not epoch 4's


def test_averaging_refuses_checkpoints_of_different_models(an4_manifest, tmp_path):
    from asr.model.bundled import CheckpointError, default_model_path
    from asr.model.checkpoint import average_checkpoints

    cfg = tiny_config(an4_manifest, tmp_path / "small", epochs=1, augment=False)
    fit(cfg)
    with pytest.raises(CheckpointError, match="differs"):
        average_checkpoints([default_model_path(), tmp_path / "small" / "last.pt"])
    with pytest.raises(CheckpointError, match="no checkpoints"):
        average_checkpoints([])


def test_training_with_noise_mixes_it_into_the_waveforms(an4_manifest, tmp_path):
    cfg = tiny_config(an4_manifest, tmp_path / "noise", epochs=1, augment=False)
    cfg.augment.noise_prob, cfg.augment.noise_snr_db = 1.0, [5.0, 5.0]
    trainer = Trainer(cfg)
    plain = Trainer(tiny_config(an4_manifest, tmp_path / "plain", 1, augment=False))
    clean, noisy = plain.dataset[0][0], trainer.dataset[0][0]
    snr = 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean())
    assert snr.item() == pytest.approx(5.0, abs=0.01)
    assert torch.equal(noisy, trainer.dataset[0][0])  # same (seed, epoch, item)
    trainer.dataset.epoch = 1
    assert not torch.equal(noisy, trainer.dataset[0][0])  # a new draw next epoch


def test_training_with_band_limit_removes_the_high_band(an4_manifest, tmp_path):
    cfg = tiny_config(an4_manifest, tmp_path / "phone", epochs=1, augment=False)
    cfg.augment.band_limit_prob = 1.0
    phone = Trainer(cfg).dataset[0][0]
    plain = Trainer(tiny_config(an4_manifest, tmp_path / "plain", 1, augment=False))
    clean = plain.dataset[0][0]

    def high(wav: torch.Tensor) -> float:  # energy above 4.2 kHz
        return band_energy(wav, 4200, float("inf"))

    assert phone.shape == clean.shape
    assert high(phone) < 1e-4 * high(clean)


def test_training_with_random_eq_colours_the_spectrum(an4_manifest, tmp_path):
    cfg = tiny_config(an4_manifest, tmp_path / "eq", epochs=1, augment=False)
    cfg.augment.eq_prob, cfg.augment.eq_max_db = 1.0, 12.0
    coloured = Trainer(cfg).dataset[0][0]
    plain = Trainer(tiny_config(an4_manifest, tmp_path / "plain", 1, augment=False))
    clean = plain.dataset[0][0]
    assert coloured.shape == clean.shape
    # some band moves by more than 2 dB, none by more than 12 (+ leakage)
    bands = [(100, 300), (300, 800), (800, 2000), (2000, 5000)]
    moved = [
        10 * math.log10(band_energy(coloured, lo, hi) / band_energy(clean, lo, hi))
        for lo, hi in bands
    ]
    assert max(abs(m) for m in moved) > 2.0 and max(abs(m) for m in moved) < 13.0


def test_training_with_edge_trim_cuts_the_pauses_around_the_speech(
    an4_manifest, tmp_path
):
    cfg = tiny_config(an4_manifest, tmp_path / "trim", epochs=1, augment=False)
    cfg.augment.edge_trim_prob, cfg.augment.edge_trim_max_ms = 1.0, 0.0
    trimmed = Trainer(cfg).dataset[3][0]  # 0.37 s of silence before the speech
    plain = Trainer(tiny_config(an4_manifest, tmp_path / "plain", 1, augment=False))
    clean = plain.dataset[3][0]
    start, end = EdgeTrim.speech_span(clean)
    torch.testing.assert_close(trimmed, clean[start:end])
    assert len(trimmed) < len(clean) - 8000

    cfg.augment.edge_pad_prob, cfg.augment.edge_pad_max_ms = 1.0, 200.0
    cfg.trainer.out_dir = str(tmp_path / "trim_pad")
    padded = Trainer(cfg).dataset[3][0]  # trimmed first, then padded
    extra = len(padded) - len(trimmed)
    assert 0 < extra <= 6400
    assert any(
        torch.equal(padded[b : b + len(trimmed)], trimmed) for b in range(extra + 1)
    )


def test_training_with_edge_crop_cuts_into_the_speech(an4_manifest, tmp_path):
    cfg = tiny_config(an4_manifest, tmp_path / "crop", epochs=1, augment=False)
    cfg.augment.edge_crop_prob, cfg.augment.edge_crop_max_ms = 1.0, 80.0
    trainer = Trainer(cfg)
    plain = Trainer(tiny_config(an4_manifest, tmp_path / "plain", 1, augment=False))
    for i in range(len(trainer.dataset)):
        clean, cropped = plain.dataset[i][0], trainer.dataset[i][0]
        start, end = EdgeTrim.speech_span(clean)
        # a piece of the speech, 0 to 80 ms (1280 samples) short of it at each end
        assert end - start - 2560 <= len(cropped) <= end - start
        offsets = [
            o
            for o in range(start, start + 1281)
            if torch.equal(cropped, clean[o : o + len(cropped)])
        ]
        assert offsets and offsets[0] + len(cropped) <= end
    cuts = [len(plain.dataset[i][0]) - len(trainer.dataset[i][0]) for i in range(4)]
    trainer.dataset.epoch = 1  # drawn anew each epoch
    assert cuts != [
        len(plain.dataset[i][0]) - len(trainer.dataset[i][0]) for i in range(4)
    ]


def _layer_ctc(trainer: Trainer, batch, layer: int) -> torch.Tensor:
    """CTC loss sum of one encoder layer's output through the CTC head."""
    model = trainer.model
    feats, feat_lens = model.frontend(batch.wavs, batch.wav_lens)
    x, lens = model.subsampling(feats, feat_lens)
    out = model.encoder.forward_layers(x, lens)[layer - 1]
    return torch.nn.functional.ctc_loss(
        model.head(out).transpose(0, 1),
        batch.targets,
        lens,
        batch.target_lens,
        reduction="sum",
        zero_infinity=True,
    )


def inter_config(manifest, out_dir, weight: float, epochs: int = 1) -> TrainConfig:
    cfg = tiny_config(manifest, out_dir, epochs, augment=False)
    cfg.model = dataclasses.replace(
        cfg.model, n_layers=3, dropout=0.0, inter_ctc_weight=weight
    )
    return cfg


def test_intermediate_ctc_mixes_the_middle_layers_loss(an4_manifest, tmp_path):
    trainer = Trainer(inter_config(an4_manifest, tmp_path / "i", weight=0.4))
    batch = collate([trainer.dataset[i] for i in range(2)])
    with torch.no_grad():
        loss = trainer._loss_sum(batch, use_specaug=False)
        last, middle = _layer_ctc(trainer, batch, 3), _layer_ctc(trainer, batch, 2)
    assert middle.item() != pytest.approx(last.item(), rel=1e-3)
    assert loss.item() == pytest.approx(0.6 * last.item() + 0.4 * middle.item())

    plain = Trainer(inter_config(an4_manifest, tmp_path / "p", weight=0.0))
    with torch.no_grad():
        assert plain._loss_sum(batch, use_specaug=False).item() == pytest.approx(
            _layer_ctc(plain, batch, 3).item()
        )


def test_intermediate_ctc_trains_the_middle_layer_to_read_out(an4_manifest, tmp_path):
    """After the same steps, the middle layer's output decodes through the CTC
    head far better with intermediate CTC than without it."""
    middle = {}
    for weight in (0.0, 0.5):
        cfg = inter_config(an4_manifest, tmp_path / str(weight), weight, epochs=25)
        cfg.data.max_batch_seconds, cfg.data.max_batch_size = 30.0, 0  # one batch
        cfg.optim.lr = 5e-3
        trainer = Trainer(cfg)
        trainer.fit()
        trainer.model.eval()
        batch = collate([trainer.dataset[i] for i in range(len(trainer.dataset))])
        with torch.no_grad():
            middle[weight] = _layer_ctc(trainer, batch, 2).item() / len(batch.indices)
    assert middle[0.5] < 0.5 * middle[0.0], middle


def test_training_with_vocal_tract_warp_moves_the_formants(an4_manifest, tmp_path):
    from asr.features.spec_augment import VocalTractWarp

    cfg = tiny_config(an4_manifest, tmp_path / "vtlp", epochs=1, augment=False)
    cfg.augment.vtlp_prob, cfg.augment.vtlp_range = 1.0, [1.2, 1.2]
    trainer = Trainer(cfg)
    assert isinstance(trainer.net.warp, VocalTractWarp)
    assert Trainer(tiny_config(an4_manifest, tmp_path / "p", 1, False)).net.warp is None
    batch = collate([trainer.dataset[0]])
    frontend = trainer.model.frontend
    feats, _ = frontend(batch.wavs, batch.wav_lens)
    warped = trainer.net.warp(feats, frontend.cmvn.mean, frontend.cmvn.std)
    raw = (feats * frontend.cmvn.std + frontend.cmvn.mean).exp().mean(1)[0]
    moved = (warped * frontend.cmvn.std + frontend.cmvn.mean).exp().mean(1)[0]
    hz = torch.from_numpy(trainer.net.warp.centres).float()

    def centroid(energy: torch.Tensor, top_hz: float) -> float:  # below top_hz
        low = hz < top_hz
        return float((energy[low] * hz[low]).sum() / energy[low].sum())

    # below the warp's knee, what lay under 3 kHz now lies under 3.6 kHz
    assert centroid(moved, 3600) / centroid(raw, 3000) == pytest.approx(1.2, abs=0.03)
    assert centroid(raw, 3600) / centroid(raw, 3000) < 1.12, "test not sensitive"
    trainer.fit()  # and it trains through it
    assert (tmp_path / "vtlp" / "last.pt").exists()
