from __future__ import annotations

import dataclasses

import pytest
import torch

from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ConvSubsampling, ModelConfig


def small_model(**kw) -> ASRModel:
    torch.manual_seed(0)
    cfg = ModelConfig(conv_channels=8, hidden_size=32, n_layers=3, dropout=0.3, **kw)
    return ASRModel(cfg, FeatureConfig(), vocab_size=12).eval()


def test_output_shapes_and_lengths():
    model = small_model()
    wavs = torch.randn(2, 16000)
    log_probs, lens = model(wavs, torch.tensor([16000, 9000]))
    # 97 feature frames -> ((97 - 1) // 2 - 1) // 2 = 23 encoder frames
    assert log_probs.shape == (2, 23, 12)
    assert lens.tolist() == [23, ConvSubsampling.out_lens(torch.tensor(53)).item()]
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 23))


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_outputs_do_not_depend_on_padding(rnn):
    model = small_model(rnn=rnn)
    wav = torch.randn(1, 11000)
    alone, n = model(wav, torch.tensor([11000]))
    padded = torch.cat([wav, 0.5 * torch.randn(1, 7000)], dim=1)
    with_pad, n2 = model(padded, torch.tensor([11000]))
    assert n.tolist() == n2.tolist()
    torch.testing.assert_close(with_pad[:, : n[0]], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_outputs_do_not_depend_on_batch_neighbours(rnn):
    model = small_model(rnn=rnn)
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(8000, generator=gen)
    alone, n = model(target[None], torch.tensor([8000]))
    for others in ([4000], [16000, 3000], [12000, 8000, 20000]):
        wavs = [torch.randn(k, generator=gen) for k in others] + [target]
        lens = torch.tensor([len(w) for w in wavs])
        batch = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
        out, out_lens = model(batch, lens)
        assert out_lens[-1] == n[0]
        torch.testing.assert_close(out[-1, : n[0]], alone[0], atol=1e-5, rtol=1e-5)


def test_dropout_only_in_training_and_depth_width_configurable():
    model = small_model()
    assert len(model.encoder.layers) == 3
    assert model.encoder.layers[0].hidden_size == 32
    wav, lens = torch.randn(1, 8000), torch.tensor([8000])
    torch.testing.assert_close(model(wav, lens)[0], model(wav, lens)[0])
    model.train()
    assert not torch.allclose(model(wav, lens)[0], model(wav, lens)[0])


def test_very_short_input_still_gives_one_frame():
    log_probs, lens = small_model()(torch.randn(1, 200), torch.tensor([200]))
    assert lens.tolist() == [1] and log_probs.shape[1] >= 1


def test_gru_encoder_has_gru_layers_and_three_quarters_of_the_recurrent_weights():
    lstm, gru = small_model(), small_model(rnn="gru")
    assert all(isinstance(m, torch.nn.GRU) for m in gru.encoder.layers)

    def recurrent(m):
        return sum(p.numel() for p in m.encoder.layers.parameters())

    assert recurrent(gru) * 4 == recurrent(lstm) * 3  # 3 gates vs 4


def test_unknown_rnn_type_is_a_clear_error():
    with pytest.raises(ValueError, match="model.rnn"):
        ModelConfig(rnn="transformer")


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_padded_and_packed_encoders_give_the_same_outputs_and_gradients(rnn):
    torch.manual_seed(3)
    cfg = ModelConfig(conv_channels=4, hidden_size=16, n_layers=3, dropout=0.0, rnn=rnn)
    model = ASRModel(cfg, FeatureConfig(), vocab_size=9).train()
    x = torch.randn(4, 23, model.subsampling.out_dim)
    lens = torch.tensor([23, 17, 1, 9])
    weights = torch.randn(4, 23, 32)
    outputs, grads = [], []
    for forward in (model.encoder.forward_packed, model.encoder.forward_padded):
        layers = forward(x, lens)  # every layer's output: intermediate CTC reads one
        outputs.append(layers)
        params = list(model.encoder.parameters())
        loss = sum((out * weights * (i + 1)).sum() for i, out in enumerate(layers))
        grads.append(torch.autograd.grad(loss, params))
    assert len(outputs[0]) == len(outputs[1]) == 3
    for packed, padded in zip(*outputs):
        torch.testing.assert_close(padded, packed, atol=1e-5, rtol=1e-5)
        assert padded[1, 17:].abs().max() == 0  # padding stays zero
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
    # the twins are bound to the layers' own tensors: nothing extra to train or save
    assert len(list(model.parameters())) == len(set(map(id, model.parameters())))
    assert not [k for k in model.state_dict() if "_directions" in k]


def test_intermediate_ctc_settings_are_checked_and_default_to_the_middle():
    assert ModelConfig(n_layers=3).inter_ctc_tap == 0  # off by default
    assert ModelConfig(n_layers=3, inter_ctc_weight=0.3).inter_ctc_tap == 2
    assert ModelConfig(n_layers=4, inter_ctc_weight=0.3).inter_ctc_tap == 2
    assert ModelConfig(n_layers=5, inter_ctc_weight=0.3).inter_ctc_tap == 3
    assert (
        ModelConfig(n_layers=5, inter_ctc_weight=0.3, inter_ctc_layer=1).inter_ctc_tap
        == 1
    )
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="inter_ctc_weight"):
            ModelConfig(inter_ctc_weight=bad)
    for bad in (-1, 3):
        with pytest.raises(ValueError, match="inter_ctc_layer"):
            ModelConfig(n_layers=3, inter_ctc_layer=bad)


def test_intermediate_ctc_adds_no_parameters_and_inference_ignores_it():
    torch.manual_seed(0)
    base = ModelConfig(conv_channels=4, hidden_size=16, n_layers=3, dropout=0.0)
    plain = ASRModel(base, FeatureConfig(), vocab_size=9).eval()
    inter = ASRModel(
        dataclasses.replace(base, inter_ctc_weight=0.3), FeatureConfig(), vocab_size=9
    ).eval()
    assert plain.state_dict().keys() == inter.state_dict().keys()
    inter.load_state_dict(plain.state_dict())
    feats, lens = torch.randn(2, 40, 80), torch.tensor([40, 31])
    torch.testing.assert_close(
        inter.forward_features(feats, lens)[0], plain.forward_features(feats, lens)[0]
    )
    log_probs, out_lens, middle = inter.forward_train(feats, lens)
    torch.testing.assert_close(log_probs, plain.forward_features(feats, lens)[0])
    assert middle.shape == log_probs.shape and not torch.allclose(middle, log_probs)
    assert plain.forward_train(feats, lens)[2] is None
