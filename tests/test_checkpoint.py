from __future__ import annotations

import os
import pickle

import pytest
import torch

from asr.data.text import CharTokenizer
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ModelConfig
from asr.model.bundled import CheckpointError
from asr.model.checkpoint import load_model, safe_load, save_model


def make_model() -> tuple[ASRModel, CharTokenizer]:
    tok = CharTokenizer.build(["hello world"])
    torch.manual_seed(0)
    model = ASRModel(
        ModelConfig(conv_channels=4, hidden_size=16, n_layers=2),
        FeatureConfig(),
        len(tok),
    )
    model.frontend.cmvn.set_stats(torch.full((80,), -3.0), torch.full((80,), 2.0))
    return model.eval(), tok


def test_round_trip_is_exact_and_weights_only(tmp_path):
    model, tok = make_model()
    path = tmp_path / "m.pt"
    save_model(path, model, tok, {"dev_wer": 0.5})
    raw = torch.load(path, weights_only=True)  # plain containers and tensors only
    assert raw["format_version"] == 1 and raw["tokenizer"]["symbols"] == tok.symbols
    loaded, tok2, meta = load_model(path)
    assert tok2.symbols == tok.symbols and meta == {"dev_wer": 0.5}
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    wav = torch.randn(1, 8000)
    torch.testing.assert_close(
        model(wav, torch.tensor([8000]))[0], loaded(wav, torch.tensor([8000]))[0]
    )


def test_half_precision_checkpoint_is_smaller_and_close(tmp_path):
    model, tok = make_model()
    save_model(tmp_path / "f.pt", model, tok)
    save_model(tmp_path / "h.pt", model, tok, half=True)
    assert os.path.getsize(tmp_path / "h.pt") < 0.7 * os.path.getsize(tmp_path / "f.pt")
    half, _, _ = load_model(tmp_path / "h.pt")
    wav = torch.randn(1, 8000)
    a = model(wav, torch.tensor([8000]))[0]
    b = half(wav, torch.tensor([8000]))[0]
    assert (a - b).abs().max() < 0.05


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/asr_pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(CheckpointError, match="evil.pt: refused to load"):
        load_model(path)
    assert not os.path.exists("/tmp/asr_pwned")


def test_missing_and_garbage_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such model file"):
        safe_load(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_model(junk)
    torch.save({"hello": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an asr model"):
        load_model(tmp_path / "other.pt")
