from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.audio.files import load_audio
from asr.cli.app import main
from asr.data.text import CharTokenizer
from asr.explain import explain_waveform, plot_explanation
from asr.features.frontend import FeatureConfig
from asr.model.acoustic import ASRModel, ModelConfig
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model, save_model
from asr.transcribe import Transcriber
from tests.conftest import clip_rows


@pytest.fixture(scope="module")
def bundled():
    return load_model(default_model_path())[:2]


def test_explanation_agrees_with_the_model_and_its_transcript(bundled):
    model, tok = bundled
    path, _ = clip_rows()[1]
    wav = load_audio(path)
    ex = explain_waveform(model, tok, wav, name=path.name)
    assert ex.max_abs_diff < 1e-4  # reference gate equations = fused nn.LSTM
    greedy = Transcriber(model, tok).transcribe_waveforms([wav])[0]
    assert ex.hypothesis.text == greedy.text
    np.testing.assert_allclose(ex.posteriors.sum(1), 1.0, atol=1e-4)
    n_frames = len(ex.posteriors)
    assert len(ex.gate_means) == model.cfg.n_layers
    for means in ex.gate_means:
        assert set(means) == {"input", "forget", "output"}
        for values in means.values():
            assert values.shape == (n_frames,) and 0 < values.min() <= values.max() < 1
    starts = [w.start for w in ex.hypothesis.words]
    assert [w.word for w in ex.hypothesis.words] == ex.hypothesis.text.split()
    assert starts == sorted(starts) and ex.hypothesis.words[-1].end <= ex.duration
    assert ex.logmel.shape[1] == model.feature_cfg.n_mels


def test_cli_writes_a_figure_and_prints_the_words(tmp_path, capsys):
    path, reference = clip_rows()[1]
    out = tmp_path / "fig.png"
    assert main(["explain", str(path), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(out).shape[:2]
    assert width >= 800 and height >= 900  # 6 panels a person can read
    assert printed.splitlines()[0] == reference  # the bundled model gets this right
    assert "max abs diff" in printed


def test_a_gru_model_shows_reset_and_update_gates(tmp_path):
    tok = CharTokenizer.build(["abc de"])
    torch.manual_seed(0)
    cfg = ModelConfig(conv_channels=4, hidden_size=8, n_layers=2, rnn="gru")
    model = ASRModel(cfg, FeatureConfig(), len(tok)).eval()
    save_model(tmp_path / "gru.pt", model, tok, {})
    model, tok = load_model(tmp_path / "gru.pt")[:2]
    ex = explain_waveform(model, tok, load_audio(clip_rows()[0][0]))
    assert ex.max_abs_diff < 1e-4
    assert [set(m) for m in ex.gate_means] == [{"reset", "update"}] * 2
    assert plot_explanation(ex, tmp_path / "gru.svg").read_text().startswith("<?xml")


def test_unreadable_input_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio")
    assert main(["explain", str(bad), "--output", str(tmp_path / "f.png")]) == 2
    assert "x.wav" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()
