from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ModelConfig
from asr.model.gates import (
    DirectionWeights,
    ReferenceEncoder,
    reverse_within_lengths,
    run_direction,
)

RNNS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def random_batch(b=4, t=23, d=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, d, generator=gen)
    lens = torch.tensor([t, 17, 1, 9][:b])
    return x, lens


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_equations_match_packed_bidirectional_nn_rnn(kind):
    torch.manual_seed(1)
    rnn = RNNS[kind](10, 7, batch_first=True, bidirectional=True)
    with torch.no_grad():  # non-trivial biases, so that b_ih + b_hh matters
        for name, p in rnn.named_parameters():
            if "bias" in name:
                p.uniform_(-1, 1)
    x, lens = random_batch()
    packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
    want, _ = pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=23)

    fwd, _ = run_direction(x, lens, DirectionWeights.of(rnn), kind)
    backward = DirectionWeights.of(rnn, "_reverse")
    back, _ = run_direction(reverse_within_lengths(x, lens), lens, backward, kind)
    got = torch.cat([fwd, reverse_within_lengths(back, lens)], dim=-1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_reference_encoder_matches_the_model_encoder(kind):
    torch.manual_seed(2)
    cfg = ModelConfig(conv_channels=4, hidden_size=12, n_layers=3, rnn=kind)
    model = ASRModel(cfg, FeatureConfig(), vocab_size=9).eval()
    x, lens = random_batch(d=model.subsampling.out_dim, seed=3)
    with torch.no_grad():
        want = model.encoder(x, lens)
    got, gates = ReferenceEncoder(model.encoder)(x, lens)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert len(gates) == 3
    n_gates = 4 if kind == "lstm" else 3
    assert gates[0].forward.shape == (4, 23, n_gates, 12)
    assert gates[0].backward.shape == (4, 23, n_gates, 12)


def test_gate_values_are_the_sigmoids_of_the_equations():
    torch.manual_seed(4)
    rnn = torch.nn.LSTM(5, 3, batch_first=True, bidirectional=True)
    x = torch.randn(1, 1, 5)  # one step from h = c = 0: gates = σ(W_ih x + b)
    _, gates = run_direction(x, torch.tensor([1]), DirectionWeights.of(rnn), "lstm")
    z = x[0, 0] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + rnn.bias_hh_l0
    i, f, g, o = z.detach().chunk(4)
    torch.testing.assert_close(gates[0, 0, 0], torch.sigmoid(i))
    torch.testing.assert_close(gates[0, 0, 1], torch.sigmoid(f))
    torch.testing.assert_close(gates[0, 0, 2], torch.tanh(g))
    torch.testing.assert_close(gates[0, 0, 3], torch.sigmoid(o))


def test_reverse_within_lengths_keeps_padding_and_is_an_involution():
    x = torch.arange(10.0).reshape(2, 5, 1)
    lens = torch.tensor([5, 3])
    r = reverse_within_lengths(x, lens)
    assert r[:, :, 0].tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    torch.testing.assert_close(reverse_within_lengths(r, lens), x)


def test_padded_frames_give_zero_outputs_and_gates():
    torch.manual_seed(5)
    cfg = ModelConfig(conv_channels=4, hidden_size=6, n_layers=2)
    model = ASRModel(cfg, FeatureConfig(), vocab_size=5).eval()
    x, lens = random_batch(d=model.subsampling.out_dim)
    out, gates = ReferenceEncoder(model.encoder)(x, lens)
    assert out[1, 17:].abs().max() == 0
    assert gates[1].forward[2, 1:].abs().max() == 0
    assert gates[1].backward[3, 9:].abs().max() == 0
