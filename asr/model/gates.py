"""Reference LSTM and GRU written from their gate equations, for reading the gates.

nn.LSTM runs fused kernels (cuDNN, oneDNN) that never show their gates. The cells
below compute the same thing step by step from the trained weights, keeping the
gate values: for an LSTM, with [h, x] the previous output stacked on the input,

    i = σ(W_i·[h, x] + b_i)    f = σ(W_f·[h, x] + b_f)    o = σ(W_o·[h, x] + b_o)
    g = tanh(W_g·[h, x] + b_g)    c' = f ⊙ c + i ⊙ g    h' = o ⊙ tanh(c')

and for a GRU  r = σ(...), z = σ(...), n = tanh(W_n x + b_n + r ⊙ (U_n h + c_n)),
h' = (1 - z) ⊙ n + z ⊙ h. PyTorch stores W_ih (4H, D) and W_hh (4H, H) with the
gates in the order i, f, g, o (GRU: r, z, n) and two biases that add up.

``ReferenceEncoder`` runs a trained ``BiLSTMEncoder`` with these cells (both
directions, each sequence within its own length) and returns the same output
as the packed nn.LSTM stack plus every gate value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

LSTM_GATES = ("input", "forget", "cell", "output")  # PyTorch's row order
GRU_GATES = ("reset", "update", "new")


@dataclass
class DirectionWeights:
    """One direction of one layer: the equations' W·[h, x] + b form."""

    w: torch.Tensor  # (G * H, H + D): [W_hh | W_ih], columns for h then x
    b: torch.Tensor  # (G * H,): b_ih + b_hh
    w_ih: torch.Tensor  # kept apart for the GRU's candidate (r gates U_n h only)
    w_hh: torch.Tensor
    b_ih: torch.Tensor
    b_hh: torch.Tensor

    @classmethod
    def of(cls, rnn: nn.LSTM | nn.GRU, suffix: str = "") -> DirectionWeights:
        """Weights of a single-layer nn.LSTM/nn.GRU; suffix "_reverse" for backward."""
        w_ih = getattr(rnn, "weight_ih_l0" + suffix).detach().float()
        w_hh = getattr(rnn, "weight_hh_l0" + suffix).detach().float()
        b_ih = getattr(rnn, "bias_ih_l0" + suffix).detach().float()
        b_hh = getattr(rnn, "bias_hh_l0" + suffix).detach().float()
        w = torch.cat([w_hh, w_ih], dim=1)
        return cls(w, b_ih + b_hh, w_ih, w_hh, b_ih, b_hh)

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]


def lstm_step(x, h, c, p: DirectionWeights):
    """One LSTM step. x (B, D), h, c (B, H) -> h', c', gates (B, 4, H) (i, f, g, o)."""
    z = torch.cat([h, x], dim=-1) @ p.w.T + p.b
    i, f, g, o = z.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c, torch.stack([i, f, g, o], dim=1)


def gru_step(x, h, p: DirectionWeights):
    """One GRU step. x (B, D), h (B, H) -> h', gates (B, 3, H) (r, z, n)."""
    gx = x @ p.w_ih.T + p.b_ih
    gh = h @ p.w_hh.T + p.b_hh
    xr, xz, xn = gx.chunk(3, dim=-1)
    hr, hz, hn = gh.chunk(3, dim=-1)
    r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    h = (1 - z) * n + z * h
    return h, torch.stack([r, z, n], dim=1)


def run_direction(
    x: torch.Tensor, lens: torch.Tensor, p: DirectionWeights, kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward in time over padded x (B, T, D) with lens (B,).

    Returns outputs (B, T, H) and gates (B, T, G, H); both 0 past each length,
    where the state also stops changing (as with packed sequences).
    """
    b, t, _ = x.shape
    h = x.new_zeros(b, p.hidden_size)
    c = x.new_zeros(b, p.hidden_size)
    n_gates = len(LSTM_GATES) if kind == "lstm" else len(GRU_GATES)
    out = x.new_zeros(b, t, p.hidden_size)
    gates = x.new_zeros(b, t, n_gates, p.hidden_size)
    for k in range(t):
        live = (k < lens).to(x.dtype)[:, None]  # (B, 1)
        if kind == "lstm":
            h_new, c_new, g = lstm_step(x[:, k], h, c, p)
            c = live * c_new + (1 - live) * c
        else:
            h_new, g = gru_step(x[:, k], h, p)
        h = live * h_new + (1 - live) * h
        out[:, k] = live * h_new
        gates[:, k] = live[:, :, None] * g
    return out, gates


def reverse_within_lengths(x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of x (B, T, ...) within its own length; padding stays."""
    t = torch.arange(x.shape[1])[None]  # (1, T)
    idx = torch.where(t < lens[:, None], lens[:, None] - 1 - t, t)  # (B, T)
    idx = idx.reshape(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, idx)


@dataclass
class LayerGates:
    """Gate values of one bidirectional layer. shape = (B, T, G, H) each."""

    names: tuple[str, ...]
    forward: torch.Tensor
    backward: torch.Tensor

    def mean(self, name: str) -> torch.Tensor:
        """Mean over units and both directions of one gate: shape = (B, T)."""
        g = self.names.index(name)
        return (self.forward[:, :, g] + self.backward[:, :, g]).mean(-1) / 2


class ReferenceEncoder:
    """A trained BiLSTMEncoder (LSTM or GRU layers) run step by step, in eval mode."""

    def __init__(self, encoder: nn.Module):
        self.kind = "gru" if isinstance(encoder.layers[0], nn.GRU) else "lstm"
        self.layers = [
            (DirectionWeights.of(rnn), DirectionWeights.of(rnn, "_reverse"), norm)
            for rnn, norm in zip(encoder.layers, encoder.norms)
        ]
        self.names = LSTM_GATES if self.kind == "lstm" else GRU_GATES

    @torch.no_grad()
    def __call__(
        self, x: torch.Tensor, lens: torch.Tensor
    ) -> tuple[torch.Tensor, list[LayerGates]]:
        """x: shape = (B, T, D), lens (B,) -> out (B, T, 2H), gates per layer."""
        x, lens = x.float(), lens.cpu()
        mask = (torch.arange(x.shape[1])[None] < lens[:, None]).to(x.dtype)[..., None]
        gates = []
        for fwd, bwd, norm in self.layers:
            f_out, f_gates = run_direction(x, lens, fwd, self.kind)
            b_out, b_gates = run_direction(
                reverse_within_lengths(x, lens), lens, bwd, self.kind
            )
            b_out = reverse_within_lengths(b_out, lens)
            b_gates = reverse_within_lengths(b_gates, lens)
            x = norm(torch.cat([f_out, b_out], dim=-1)) * mask
            gates.append(LayerGates(self.names, f_gates, b_gates))
        return x, gates
