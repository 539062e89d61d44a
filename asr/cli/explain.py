"""`asr explain`: one figure showing what the model sees, emits and attends to."""

from __future__ import annotations

from pathlib import Path

from asr.cli.common import decoding_args, decoding_options, model_args
from asr.decode.decoder import model_decoding_defaults


def add_explain_command(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="figure: log-mel, CTC posteriorgram, word alignment, LSTM gate activity",
    )
    p.add_argument("input", help="audio file (any format asr transcribe reads)")
    p.add_argument(
        "--output", type=Path, required=True, help="figure file (.png, .pdf, .svg)"
    )
    model_args(p)
    decoding_args(p)
    p.set_defaults(func=cmd_explain)


def cmd_explain(args) -> int:
    from asr.audio.padding import load_padded
    from asr.explain import explain_waveform, plot_explanation
    from asr.model.bundled import resolve_model
    from asr.model.checkpoint import load_model

    model, tokenizer, _ = load_model(resolve_model(args.model))
    options = decoding_options(args, model_decoding_defaults(model, tokenizer))
    # the figure shows what the model reads: with edge padding, the padded clip
    wav = load_padded(args.input, options.pad_ms)
    ex = explain_waveform(model, tokenizer, wav, options, name=Path(args.input).name)
    path = plot_explanation(ex, args.output)
    words = " ".join(
        f"{w.word}[{w.start:.2f}-{w.end:.2f}]" for w in ex.hypothesis.words
    )
    print(f"{ex.hypothesis.text}\n{words}")
    print(
        f"figure -> {path} ({len(ex.gate_means)} {ex.rnn.upper()} layers; reference "
        f"cells vs model log-probs: max abs diff {ex.max_abs_diff:.2e})"
    )
    if options.pad_ms:
        print(f"padded to {options.pad_ms:g} ms of pause each side (times count it)")
    return 0
