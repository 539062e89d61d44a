from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from asr.audio.files import load_audio
from asr.cli.app import main
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.stream.grammar import (
    CommandMatcher,
    Grammar,
    GrammarError,
    expand,
    number_words,
)
from tests.conftest import ROOT, clip_rows

EXAMPLE = ROOT / "examples" / "commands.yaml"


@pytest.fixture(scope="module")
def model():
    return load_model(default_model_path())[:2]


def log_probs(net, wav: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        lp, n = net(torch.from_numpy(wav)[None], torch.tensor([len(wav)]))
    return lp[0, : n[0]]


def test_number_words_and_slot_expansion():
    assert [number_words(n) for n in (0, 7, 13, 40, 41, 99)] == [
        "zero",
        "seven",
        "thirteen",
        "forty",
        "forty one",
        "ninety nine",
    ]
    assert number_words(205) == "two hundred and five"
    exp = expand("enter <digit>")
    assert ("enter seven", {"digit": 7}) in exp and ("enter oh", {"digit": 0}) in exp
    assert len(expand("<letter> <digit>")) == 26 * 11


def test_example_grammar_has_the_required_commands():
    phrases = {c.phrase for c in Grammar.load(EXAMPLE).commands}
    required = [
        "yes",
        "no",
        "up",
        "down",
        "left",
        "right",
        "on",
        "off",
        "stop",
        "go",
        "start",
        "help",
        "repeat",
        "enter",
        "erase",
        "rubout",
    ]
    assert set(required) | {"<digit>"} <= phrases


def test_grammar_words_are_its_phrases_words_with_slots_expanded(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(
        "commands:\n"
        '  - {phrase: "lights on", action: {print: x}}\n'
        '  - {phrase: "on", action: {print: y}}\n'
        '  - {phrase: "channel <digit>", action: {print: z}}\n'
    )
    words = Grammar.load(path).words()
    assert words[:4] == ["lights", "on", "channel", "zero"]
    assert len(words) == 3 + 11 and words[-1] == "oh"  # ten digits and "oh", once


@pytest.mark.parametrize(
    "text,message",
    [
        ("nothing: here\n", "commands"),
        ("commands:\n  - {phrase: go}\n", "phrase' and 'action"),
        (
            "commands:\n  - {phrase: 'go <colour>', action: {print: x}}\n",
            "unknown slot",
        ),
        ("commands:\n  - {phrase: go, action: {run: 'rm -rf /'}}\n", "argument list"),
        ("commands:\n  - {phrase: go, action: {dance: x}}\n", "print, run or emit"),
        ("commands: [\n", "cannot read"),
    ],
)
def test_bad_grammars_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(GrammarError, match=message) as err:
        Grammar.load(path)
    assert "g.yaml" in str(err.value)


def test_real_command_clip_matches_and_other_speech_does_not(model):
    net, tok = model
    matcher = CommandMatcher(Grammar.load(EXAMPLE), tok)
    fired = {}
    for path, text in clip_rows():
        m = matcher.match(log_probs(net, load_audio(path)))
        fired[text] = None if m is None else m.command.phrase
    assert fired.pop("stop") == "stop"
    assert set(fired.values()) == {None}  # numbers, dates, spelled names


def test_noise_and_silence_fire_nothing(model):
    net, tok = model
    matcher = CommandMatcher(Grammar.load(EXAMPLE), tok)
    rng = np.random.default_rng(0)
    for wav in (
        np.zeros(16000),
        0.1 * rng.standard_normal(32000),
        0.3 * np.sin(np.arange(24000) * 2 * np.pi * 440 / 16000),
    ):
        assert matcher.match(log_probs(net, wav.astype(np.float32))) is None


def test_slots_reach_the_action(model, tmp_path):
    net, tok = model
    grammar = tmp_path / "g.yaml"
    grammar.write_text(
        "commands:\n  - {phrase: 'enter <number>', action: {print: x}}\n"
    )
    matcher = CommandMatcher(Grammar.load(grammar), tok)
    path = next(p for p, t in clip_rows() if t == "enter forty one")
    m = matcher.match(log_probs(net, load_audio(path)))
    assert m is not None and m.slots == {"number": 41} and m.text == "enter forty one"


def run_commands_on_stop(grammar, *extra: str) -> int:
    """`asr commands` on the bundled "stop" clip, replayed without waiting."""
    path = next(p for p, t in clip_rows() if t == "stop")
    return main(
        [
            "commands",
            "--grammar",
            str(grammar),
            "--input",
            str(path),
            "--speed",
            "0",
            *extra,
        ]
    )


def test_cli_commands_json_and_actions_without_a_shell(tmp_path, capsys):
    marker = tmp_path / "ran.txt"
    grammar = tmp_path / "g.yaml"
    script = f"import sys; open({str(marker)!r}, 'w').write(' '.join(sys.argv[1:]))"
    grammar.write_text(
        "commands:\n"
        f"  - phrase: stop\n    action: {{run: [{sys.executable!r}, -c, {script!r},"
        " 'a;b', '$HOME']}\n"
        "  - {phrase: go, action: {emit: {state: go}}}\n"
    )
    assert run_commands_on_stop(grammar, "--json") == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    event = json.loads(line)
    assert event["command"] == "stop" and event["text"] == "stop"
    assert event["slots"] == {} and 0.5 <= event["confidence"] <= 1
    assert 0 <= event["start"] < event["end"]
    # arguments reach the program verbatim: no shell expanded $HOME or split on ;
    assert marker.read_text() == "a;b $HOME"


def test_cli_shell_only_when_the_grammar_asks(tmp_path, capsys):
    marker = tmp_path / "shell.txt"
    grammar = tmp_path / "g.yaml"
    grammar.write_text(
        "commands:\n  - phrase: stop\n    action: {run: 'echo $((1+2))"
        f" > {marker}', shell: true}}\n"
    )
    assert run_commands_on_stop(grammar) == 0
    assert "stop" in capsys.readouterr().out
    assert marker.read_text().strip() == "3"


def test_cli_stream_json_events(capsys):
    path, _ = clip_rows()[2]
    assert main(["stream", "--input", str(path), "--speed", "0", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["type"] == "final" and events[-1]["text"]
    assert {e["type"] for e in events[:-1]} == {"partial"}
    assert set(events[-1]) == {"type", "text", "start", "end"}


def test_an4_dev_commands_fire_and_other_speech_does_not(model, tmp_path):
    from tests.conftest import SHARED_AN4

    if not SHARED_AN4.is_dir():
        pytest.skip("../shared/data/an4 is not here")
    sys.path.insert(0, str(ROOT / "recipes" / "an4"))
    import prepare

    from asr.data.manifest import read_manifest

    prepare.main(["--an4", str(SHARED_AN4), "--out", str(tmp_path)])
    net, tok = model
    grammar = Grammar.load(EXAMPLE)
    matcher = CommandMatcher(grammar, tok)
    words = {c.phrase for c in grammar.commands} | {w for w, _ in expand("<digit>")}
    right = wrong = fired_on_other = n_other = 0
    for u in read_manifest(tmp_path / "dev.jsonl"):  # speakers the model never heard
        m = matcher.match(log_probs(net, load_audio(u.audio_filepath)))
        if u.text in words:
            right += m is not None and m.text == u.text
            wrong += m is not None and m.text != u.text
        else:
            n_other += 1
            fired_on_other += m is not None
    assert right >= 4 and wrong == 0
    assert n_other > 90 and fired_on_other <= 1
