"""Look inside one utterance: features, CTC posteriors, word alignment, gate activity.

``explain_waveform`` computes everything from a trained model (the recurrent
layers run through the reference cells of ``asr.model.gates`` so that the gate values
are available); ``plot_explanation`` draws it as one figure with a shared time
axis in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.data.text import Tokenizer
from asr.decode.alignment import align_words
from asr.decode.decoder import DecodingOptions, Hypothesis, build_decoder
from asr.features.frontend import level_gains
from asr.model.acoustic import ASRModel
from asr.model.gates import LayerGates, ReferenceEncoder

SHOWN_GATES = {"lstm": ("input", "forget", "output"), "gru": ("reset", "update")}


@dataclass
class Explanation:
    name: str
    duration: float  # seconds of audio
    logmel: np.ndarray  # (T, F) log-mel before CMVN, after level normalisation
    feature_seconds: float  # seconds per feature frame
    posteriors: np.ndarray  # (T', V) per-frame token probabilities
    frame_seconds: float  # seconds per encoder frame
    symbols: list[str]  # token names, blank first
    hypothesis: Hypothesis  # best path, with word timings
    decoder: str
    rnn: str  # lstm | gru
    gate_means: list[dict[str, np.ndarray]]  # per layer: gate -> (T',) mean value
    max_abs_diff: float  # reference cells vs the model's own encoder, log-probs


@torch.no_grad()
def explain_waveform(
    model: ASRModel,
    tokenizer: Tokenizer,
    wav: np.ndarray,
    options: DecodingOptions | None = None,
    name: str = "",
) -> Explanation:
    """wav: shape = (S,) 16 kHz mono -> everything the figure shows."""
    model = model.eval().cpu()
    options = options or DecodingOptions()
    wavs = torch.from_numpy(np.asarray(wav, dtype=np.float32))[None]
    wav_lens = torch.tensor([wavs.shape[1]])
    front = model.frontend
    gains = None
    if front.cfg.level_db is not None:
        gains = level_gains(wavs, wav_lens, front.cfg.level_db)
    scaled = wavs if gains is None else wavs * gains[:, None]
    logmel, feat_lens = front.logmel(scaled, wav_lens)
    x, lens = model.subsampling(front.cmvn(logmel), feat_lens)
    encoded, gates = ReferenceEncoder(model.encoder)(x, lens)
    log_probs = model.head(encoded)
    reference, _ = model(wavs, wav_lens)  # the fused kernels, for the record
    n = int(lens[0])
    diff = (log_probs[0, :n] - reference[0, :n]).abs().max().item()

    decoder = build_decoder(options, tokenizer, model.frame_seconds)
    hyp = decoder.decode(log_probs, lens)[0][0]
    hyp.words = align_words(
        log_probs[0, :n], hyp.text, tokenizer, model.frame_seconds, wav=wavs[0].numpy()
    )
    kind = model.cfg.rnn
    return Explanation(
        name=name,
        duration=wavs.shape[1] / front.cfg.sample_rate,
        logmel=logmel[0, : int(feat_lens[0])].numpy(),
        feature_seconds=front.cfg.hop_ms / 1000,
        posteriors=log_probs[0, :n].exp().numpy(),
        frame_seconds=model.frame_seconds,
        symbols=list(tokenizer.symbols),
        hypothesis=hyp,
        decoder=options.decoder,
        rnn=kind,
        gate_means=[_gate_means(g, kind, n) for g in gates],
        max_abs_diff=diff,
    )


def _gate_means(gates: LayerGates, kind: str, n: int) -> dict[str, np.ndarray]:
    return {name: gates.mean(name)[0, :n].numpy() for name in SHOWN_GATES[kind]}


def token_label(symbol: str) -> str:
    return {"<blank>": "blank", " ": "space", "'": "'"}.get(symbol, symbol)


def plot_explanation(ex: Explanation, output: str | Path) -> Path:
    """Draw the explanation as one PNG/PDF/SVG figure (by the output suffix)."""
    import matplotlib  # lazily, for start-up: slow to import, needed only here

    matplotlib.use("Agg")  # no display: files only, chosen before pyplot loads
    import matplotlib.pyplot as plt  # lazily, as matplotlib above

    n_layers = len(ex.gate_means)
    heights = [2.2, 3.2, 0.7] + [1.1] * n_layers
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(max(8.0, min(24.0, 2.2 * ex.duration + 4)), sum(heights) + 1.2),
        sharex=True,
        gridspec_kw={"height_ratios": heights},
        constrained_layout=True,
    )
    title = f"{ex.name}: “{ex.hypothesis.text}”" if ex.name else ex.hypothesis.text
    fig.suptitle(title, fontsize=12)
    _plot_logmel(axes[0], ex)
    _plot_posteriors(axes[1], ex)
    _plot_words(axes[2], ex)
    for k, (ax, means) in enumerate(zip(axes[3:], ex.gate_means)):
        _plot_gates(ax, means, f"layer {k + 1}", ex)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, ex.duration)
    for ax in axes:
        for w in ex.hypothesis.words:  # word boundaries across every panel
            ax.axvline(w.start, color="0.5", lw=0.6, ls=":")
            ax.axvline(w.end, color="0.5", lw=0.6, ls=":")
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def _plot_logmel(ax, ex: Explanation) -> None:
    t_end = len(ex.logmel) * ex.feature_seconds
    ax.imshow(
        ex.logmel.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, t_end, 0, ex.logmel.shape[1]),
        interpolation="nearest",
    )
    ax.set_ylabel("mel bin")
    ax.set_title("log-mel spectrogram", loc="left", fontsize=10)


def _plot_posteriors(ax, ex: Explanation) -> None:
    # rows: every token that reaches 1% somewhere, blank on top
    shown = [
        v for v in range(len(ex.symbols)) if v == 0 or ex.posteriors[:, v].max() > 0.01
    ]
    shown = [0] + sorted(shown[1:], key=lambda v: ex.symbols[v])
    t_end = len(ex.posteriors) * ex.frame_seconds
    ax.imshow(
        ex.posteriors[:, shown[::-1]].T,
        origin="lower",
        aspect="auto",
        cmap="Greys",
        vmin=0,
        vmax=1,
        extent=(0, t_end, -0.5, len(shown) - 0.5),
        interpolation="nearest",
    )
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([token_label(ex.symbols[v]) for v in shown[::-1]], fontsize=7)
    ax.set_ylabel("token")
    ax.set_title(
        f"CTC posteriorgram: P(token) per frame, white 0 to black 1 "
        f"({len(shown)} of {len(ex.symbols)} tokens reach 1%)",
        loc="left",
        fontsize=10,
    )


def _plot_words(ax, ex: Explanation) -> None:
    for k, w in enumerate(ex.hypothesis.words):
        color = "C0" if k % 2 == 0 else "C1"
        ax.axvspan(w.start, w.end, color=color, alpha=0.3)
        ax.text(
            (w.start + w.end) / 2,
            0.5,
            w.word,
            ha="center",
            va="center",
            fontsize=10,
            fontweight="bold",
        )
    ax.set_yticks([])
    ax.set_ylim(0, 1)
    ax.set_title(f"{ex.decoder} alignment: word spans", loc="left", fontsize=10)


def _plot_gates(ax, means: dict[str, np.ndarray], label: str, ex) -> None:
    t = (np.arange(len(next(iter(means.values())))) + 0.5) * ex.frame_seconds
    for name, values in means.items():
        ax.plot(t, values, lw=1.2, label=f"{name} gate")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean")
    ax.set_title(
        f"{ex.rnn.upper()} {label}: gate means over units and both directions",
        loc="left",
        fontsize=10,
    )
    ax.legend(loc="upper right", fontsize=7, ncol=len(means), frameon=False)
