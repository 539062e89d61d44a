from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.audio.files import load_audio
from asr.cli.app import main
from asr.data.text import CharTokenizer
from asr.decode.metrics import score
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ModelConfig
from asr.model.bundled import CheckpointError, default_model_path
from asr.model.checkpoint import load_model
from asr.model.export import DFTLogMel, export_model, max_difference, quantize_model
from asr.model.exported import OnnxModel, TorchScriptModel, load_inference_model
from asr.transcribe import Transcriber
from tests.conftest import clip_rows

TOLERANCE = 1e-3  # log-probs; measured: below 2e-5 (float32 DFT vs FFT)


@pytest.fixture(scope="module")
def bundled():
    model, tokenizer, _ = load_model(default_model_path())
    return model, tokenizer


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    return [load_audio(p) for p, _ in clip_rows()]


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """The bundled model exported by the CLI; TorchScript under a .pt name."""
    folder = tmp_path_factory.mktemp("exports")
    paths = {"onnx": folder / "an4.onnx", "torchscript": folder / "an4.pt"}
    for fmt, path in paths.items():
        assert main(["export", "--format", fmt, "--output", str(path)]) == 0
    return paths


def test_exports_match_the_checkpoint_with_any_batch_and_length(
    bundled, clips, exports
):
    model, _ = bundled
    rng = np.random.default_rng(0)
    short = [0.05 * rng.standard_normal(n).astype(np.float32) for n in (300, 1000)]
    for fmt, kind in (("onnx", OnnxModel), ("torchscript", TorchScriptModel)):
        exported, tokenizer = load_inference_model(exports[fmt])
        assert isinstance(exported, kind) and tokenizer.symbols == bundled[1].symbols
        assert exported.frame_seconds == model.frame_seconds
        # the bundled model's own decoding defaults (edge padding) travel along
        assert exported.decoding_defaults == model.decoding_defaults != {}
        # exported with B = 2, S = 32000: here B = 5, 1, 3 and other lengths
        assert max_difference(model, exported, clips) < TOLERANCE
        assert max_difference(model, exported, clips[:1]) < TOLERANCE
        assert max_difference(model, exported, [*short, clips[0]]) < TOLERANCE


def test_exports_give_the_same_transcripts(bundled, clips, exports):
    model, tokenizer = bundled
    expected = [
        h.text for h in Transcriber(model, tokenizer).transcribe_waveforms(clips)
    ]
    for path in exports.values():
        exported, tokenizer = load_inference_model(path)
        hyps = Transcriber(exported, tokenizer).transcribe_waveforms(clips)
        assert [h.text for h in hyps] == expected


def test_cli_transcribes_and_evaluates_with_an_exported_model(
    exports, an4_manifest, tmp_path, capsys
):
    files = [str(p) for p, _ in clip_rows()]
    assert main(["transcribe", *files]) == 0
    expected = capsys.readouterr().out
    for path in exports.values():
        assert main(["transcribe", "--model", str(path), *files]) == 0
        assert capsys.readouterr().out == expected
    report = str(tmp_path / "r.tsv")
    args = ["evaluate", str(an4_manifest), "--report", report]
    assert main(args) == 0
    expected = capsys.readouterr().out
    assert main([*args, "--model", str(exports["onnx"])]) == 0
    assert capsys.readouterr().out == expected and "WER:" in expected


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_small_random_models_round_trip(rnn, clips, tmp_path):
    torch.manual_seed(0)
    # both frontends, with and without a power floor, and 5 ms feature hops (20 ms
    # encoder frames)
    level_db, hop_ms, floor = (
        (None, 5.0, None) if rnn == "gru" else (-25.0, 10.0, -70.0)
    )
    cfg = ModelConfig(conv_channels=4, hidden_size=16, n_layers=2, rnn=rnn)
    feats = FeatureConfig(n_mels=40, level_db=level_db, hop_ms=hop_ms, floor_dbfs=floor)
    model = ASRModel(cfg, feats, 5).eval()
    tokenizer = CharTokenizer(["<blank>", " ", "a", "b", "c"])
    for name in ("m.onnx", "m.ts"):
        exported, _ = load_inference_model(
            export_model(model, tokenizer, tmp_path / name)
        )
        assert max_difference(model, exported, clips) < TOLERANCE


def test_int8_models_keep_the_transcripts(bundled, clips, tmp_path):
    model, tokenizer = bundled
    fp32 = [h.text for h in Transcriber(model, tokenizer).transcribe_waveforms(clips)]
    int8 = {
        "torch": quantize_model(model),
        "onnx": load_inference_model(
            export_model(model, tokenizer, tmp_path / "q.onnx", quantize="int8")
        )[0],
    }
    for quantized in int8.values():
        hyps = Transcriber(quantized, tokenizer).transcribe_waveforms(clips)
        assert score(fp32, [h.text for h in hyps]).wer <= 0.1
        assert 0 < max_difference(model, quantized, clips) < 2.0


def test_unreadable_exports_are_one_clear_error(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="x.onnx: not a readable ONNX model"):
        load_inference_model(bad)
    with pytest.raises(CheckpointError, match="y.onnx: no such model file"):
        load_inference_model(tmp_path / "y.onnx")
    model, tokenizer = load_model(default_model_path())[:2]
    with pytest.raises(ValueError, match="only they, end in .onnx"):
        export_model(model, tokenizer, tmp_path / "m.onnx", fmt="torchscript")


def test_streaming_asks_for_a_checkpoint(exports, capsys):
    (path, _), *_ = clip_rows()
    args = ["stream", "--model", str(exports["onnx"]), "--input", str(path)]
    assert main(args) == 2
    assert "needs a .pt checkpoint, not an exported model" in capsys.readouterr().err


def test_info_describes_exports_like_checkpoints(bundled, exports, capsys):
    import json

    assert main(["info"]) == 0
    ckpt = json.loads(capsys.readouterr().out)
    for fmt, path in exports.items():
        assert main(["info", "--model", str(path)]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["export"]["format"] == fmt and info["export"]["quantize"] is None
        for key in ("parameters", "vocabulary", "model_config", "feature_config"):
            assert info[key] == ckpt[key], key
    assert main(["info", "--model", str(exports["onnx"].with_name("no.onnx"))]) != 0


@pytest.mark.parametrize("samples", [400, 401, 560, 16037])
def test_the_exported_stft_spans_the_window_and_matches_the_frontend(samples):
    logmel = load_model(default_model_path())[0].frontend.logmel
    dft = DFTLogMel(logmel)
    assert dft.basis.shape[-1] == logmel.cfg.win_length < logmel.cfg.n_fft
    wavs = torch.randn(2, samples, generator=torch.Generator().manual_seed(0)) / 10
    lens = torch.tensor([samples, max(400, samples - 161)])
    want, want_lens = logmel(wavs, lens)
    got, got_lens = dft(wavs, lens)
    assert torch.equal(got_lens, want_lens) and got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
