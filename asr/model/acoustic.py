"""The acoustic model: frontend -> conv x4 subsampling -> packed BiLSTMs -> CTC head.

The recurrent layers are LSTMs by default; ``ModelConfig.rnn = "gru"`` swaps in GRUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from asr.features.frontend import FeatureConfig, Frontend


@dataclass
class ModelConfig:
    conv_channels: int = 32
    hidden_size: int = 256
    n_layers: int = 3
    dropout: float = 0.1
    layer_norm: bool = True  # LayerNorm between recurrent layers (per frame)
    blank_bias: float = 0.0  # initial bias of the blank logit
    rnn: str = "lstm"  # recurrent layer type: lstm | gru
    # intermediate CTC (Lee & Watanabe, 2021): in training, the loss is
    # (1 - w) * CTC(last layer) + w * CTC(layer k), both through the one CTC head;
    # w = 0 turns it off. Inference never uses it, so it adds no parameters.
    inter_ctc_weight: float = 0.0
    inter_ctc_layer: int = 0  # k, 1-based; 0 = the middle layer, (n_layers + 1) // 2

    def __post_init__(self) -> None:
        if self.rnn not in RNN_TYPES:
            kinds = sorted(RNN_TYPES)
            raise ValueError(f"model.rnn must be one of {kinds}, not {self.rnn!r}")
        if not 0.0 <= self.inter_ctc_weight < 1.0:
            raise ValueError("model.inter_ctc_weight must be in [0, 1)")
        if not 0 <= self.inter_ctc_layer < self.n_layers:
            raise ValueError(
                f"model.inter_ctc_layer must name one of layers 1..{self.n_layers - 1} "
                "(0: the middle one)"
            )

    @property
    def inter_ctc_tap(self) -> int:
        """1-based layer whose output the intermediate CTC loss reads; 0 = off."""
        if self.inter_ctc_weight == 0.0:
            return 0
        return self.inter_ctc_layer or (self.n_layers + 1) // 2


RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU}


class ConvSubsampling(nn.Module):
    """Two 3x3 stride-2 convolutions over (time, mel): time and frequency / 4.

    No padding in time, so each output frame depends only on real input frames.
    """

    FACTOR = 4  # feature frames per output frame

    def __init__(self, n_mels: int, channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2),
            nn.ReLU(),
        )
        self.out_dim = channels * self.out_lens(torch.tensor(n_mels)).item()

    @staticmethod
    def out_lens(lens: torch.Tensor) -> torch.Tensor:
        return ((lens - 1) // 2 - 1) // 2

    def forward(self, feats: torch.Tensor, feat_lens: torch.Tensor):
        """feats: shape = (B, T, F) -> (B, T', C * F'), lens (B,).

        T' = ((T - 1) // 2 - 1) // 2."""
        if feats.shape[1] < 7:  # the shortest input that yields one frame
            feats = nn.functional.pad(feats, (0, 0, 0, 7 - feats.shape[1]))
        x = self.conv(feats.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)
        return x, self.out_lens(feat_lens).clamp(min=1)


class BiLSTMEncoder(nn.Module):
    """A stack of bidirectional LSTMs (or GRUs); padding never reaches real frames.

    Layers are separate nn.LSTMs so that LayerNorm and dropout can act between them.
    On CUDA the stack runs over one packed sequence (cuDNN). Elsewhere it runs over
    the padded batch, one direction at a time with the same weights: the forward
    direction meets padding only after the real frames, and the backward direction
    reads each row reversed within its own length. Both give the same outputs and
    gradients; on CPU the padded form is about 2.8x faster (PyTorch's packed LSTM
    backward zero-fills a whole-batch gradient at every time step;
    scripts/bench_train_step.py).
    """

    def __init__(self, input_size: int, cfg: ModelConfig):
        super().__init__()
        sizes = [input_size] + [2 * cfg.hidden_size] * (cfg.n_layers - 1)
        self.layers = nn.ModuleList(
            RNN_TYPES[cfg.rnn](n, cfg.hidden_size, batch_first=True, bidirectional=True)
            for n in sizes
        )
        norm = nn.LayerNorm if cfg.layer_norm else lambda n: nn.Identity()
        self.norms = nn.ModuleList(norm(2 * cfg.hidden_size) for _ in sizes)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out_dim = 2 * cfg.hidden_size

        # one direction of each layer as a unidirectional module; its parameters
        # are bound to the bidirectional layer's before each use (not registered)
        self._directions = [
            (_unidirectional(rnn), _unidirectional(rnn)) for rnn in self.layers
        ]

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """x: shape = (B, T, D), lens (B,) -> (B, T, 2H); frames past lens are 0."""
        return self.forward_layers(x, lens, every_layer=False)[-1]

    def forward_layers(
        self, x: torch.Tensor, lens: torch.Tensor, every_layer: bool = True
    ) -> list[torch.Tensor]:
        """Every layer's output (after its LayerNorm and dropout), first to last;
        with ``every_layer=False`` only the last one's (inference needs no more)."""
        # quantised layers (torch.ao dynamic int8) keep no float weights to bind
        if x.is_cuda or not hasattr(self.layers[0], "weight_ih_l0"):
            return self.forward_packed(x, lens, every_layer)
        return self.forward_padded(x, lens, every_layer)

    def forward_padded(
        self, x: torch.Tensor, lens: torch.Tensor, every_layer: bool = True
    ) -> list[torch.Tensor]:
        outs = []
        t = torch.arange(x.shape[1], device=x.device)[None]  # (1, T)
        lens = lens.to(x.device)
        valid = t < lens[:, None]  # (B, T)
        rev = torch.where(valid, lens[:, None] - 1 - t, t)[..., None]  # own inverse
        layers = zip(self.layers, self._directions, self.norms)
        for i, (rnn, (fwd, bwd), norm) in enumerate(layers):
            _bind(fwd, rnn, "")
            _bind(bwd, rnn, "_reverse")
            backward = bwd(x.gather(1, rev.expand(-1, -1, x.shape[2])))[0]
            backward = backward.gather(1, rev.expand(-1, -1, backward.shape[2]))
            x = self.dropout(norm(torch.cat([fwd(x)[0], backward], dim=-1)))
            if every_layer or i == len(self.layers) - 1:
                outs.append(x * valid[..., None])
        return outs

    def forward_packed(
        self, x: torch.Tensor, lens: torch.Tensor, every_layer: bool = True
    ) -> list[torch.Tensor]:
        outs = []
        packed = pack_padded_sequence(
            x, lens.cpu(), batch_first=True, enforce_sorted=False
        )
        for i, (lstm, norm) in enumerate(zip(self.layers, self.norms)):
            packed, _ = lstm(packed)
            packed = _map_packed(packed, lambda d, n=norm: self.dropout(n(d)))
            if every_layer or i == len(self.layers) - 1:
                out, _ = pad_packed_sequence(
                    packed, batch_first=True, total_length=x.shape[1]
                )
                outs.append(out)
        return outs


class CTCHead(nn.Module):
    def __init__(self, d_in: int, vocab_size: int, blank_bias: float):
        super().__init__()
        self.proj = nn.Linear(d_in, vocab_size)
        with torch.no_grad():
            self.proj.bias[0] = blank_bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> log-probs (B, T, V), float32."""
        return self.proj(x).float().log_softmax(dim=-1)


class ASRModel(nn.Module):
    """16 kHz waveforms -> CTC log-probs. Owns its frontend (features + CMVN)."""

    def __init__(self, cfg: ModelConfig, feature_cfg: FeatureConfig, vocab_size: int):
        super().__init__()
        self.cfg, self.feature_cfg, self.vocab_size = cfg, feature_cfg, vocab_size
        self.frontend = Frontend(feature_cfg)
        self.subsampling = ConvSubsampling(feature_cfg.n_mels, cfg.conv_channels)
        self.encoder = BiLSTMEncoder(self.subsampling.out_dim, cfg)
        self.head = CTCHead(self.encoder.out_dim, vocab_size, cfg.blank_bias)
        # decoding options the model is meant to be used with (checkpoint metadata
        # "decoding", see DecodingOptions.for_model); set by load_model
        self.decoding_defaults: dict = {}

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor):
        """wavs: shape = (B, S), wav_lens (B,) -> log_probs (B, T', V), lens (B,)."""
        feats, feat_lens = self.frontend(wavs, wav_lens)
        return self.forward_features(feats, feat_lens)

    def forward_features(self, feats: torch.Tensor, feat_lens: torch.Tensor):
        """Normalised feats (B, T, F) -> log_probs (B, T', V), out_lens (B,)."""
        x, lens = self.subsampling(feats, feat_lens)
        return self.head(self.encoder(x, lens)), lens

    def forward_train(self, feats: torch.Tensor, feat_lens: torch.Tensor):
        """As forward_features, plus the intermediate-CTC log-probs (B, T', V) of
        layer ``cfg.inter_ctc_tap`` through the same head (None when it is off)."""
        x, lens = self.subsampling(feats, feat_lens)
        tap = self.cfg.inter_ctc_tap
        outs = self.encoder.forward_layers(x, lens, every_layer=tap > 0)
        inter = self.head(outs[tap - 1]) if tap else None
        return self.head(outs[-1]), lens, inter

    @torch.inference_mode()
    def infer(
        self, wavs: np.ndarray, wav_lens: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``forward`` on numpy arrays, as exported models take them: wavs (B, S)
        float32, wav_lens (B,) -> log_probs (B, T', V) float32, out_lens (B,)."""
        device = next(self.parameters()).device
        log_probs, out_lens = self(
            torch.from_numpy(wavs).to(device), torch.from_numpy(wav_lens).to(device)
        )
        return log_probs.float().cpu().numpy(), out_lens.cpu().numpy()

    @property
    def frame_seconds(self) -> float:
        """Seconds per output frame (feature hop x subsampling)."""
        return self.feature_cfg.hop_ms / 1000 * ConvSubsampling.FACTOR

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


RNN_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _unidirectional(rnn: nn.LSTM | nn.GRU) -> nn.LSTM | nn.GRU:
    """An empty one-direction twin of a bidirectional single-layer LSTM/GRU."""
    twin = type(rnn)(rnn.input_size, rnn.hidden_size, batch_first=True, device="meta")
    for name in RNN_WEIGHTS:
        delattr(twin, name)
    return twin


def _bind(twin: nn.Module, rnn: nn.Module, suffix: str) -> None:
    """Point ``twin``'s weights at one direction of ``rnn`` (same tensors)."""
    for name in RNN_WEIGHTS:
        setattr(twin, name, getattr(rnn, name + suffix))
    twin.train(rnn.training)


def rnn_direction(rnn: nn.LSTM | nn.GRU, suffix: str) -> nn.LSTM | nn.GRU:
    """One direction ("" or "_reverse") of a bidirectional single-layer LSTM/GRU
    as a unidirectional module holding the same weight tensors."""
    twin = _unidirectional(rnn)
    _bind(twin, rnn, suffix)
    return twin


def _map_packed(packed: PackedSequence, fn) -> PackedSequence:
    """Apply a per-frame function to the real frames of a packed sequence."""
    return PackedSequence(
        fn(packed.data),
        packed.batch_sizes,
        packed.sorted_indices,
        packed.unsorted_indices,
    )
