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


# streaming: when a command fires (asr.stream.grammar.CommandSpotter)


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (3e-4 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def speech_of(path) -> np.ndarray:
    """A clip cut to its speech (first island's start to last island's end)."""
    from asr.audio.energy import speech_islands

    wav = load_audio(path)
    islands = speech_islands(wav)
    return wav[int(islands[0][0] * 16000) : int(islands[-1][1] * 16000)]


def fired_in_stream(net, tok, wav: np.ndarray, early: bool = True) -> list:
    """[(command text, event type, stream seconds)] as `asr commands` fires them
    (its endpointer and early-firing defaults), streamed in 30 ms blocks."""
    from asr.cli.stream import (
        COMMANDS_EARLY_MS,
        COMMANDS_ENDPOINT_MS,
        COMMANDS_VAD_FRAME_MS,
    )
    from asr.stream.grammar import CommandSpotter
    from asr.stream.recognizer import StreamingConfig, StreamingRecognizer

    cfg = StreamingConfig(
        padding_ms=COMMANDS_ENDPOINT_MS,
        pause_ms=COMMANDS_EARLY_MS if early else 0,
        vad_frame_ms=COMMANDS_VAD_FRAME_MS,
    )
    rec = StreamingRecognizer(net, tok, cfg)
    matcher = CommandMatcher(Grammar.load(EXAMPLE), tok)
    spotter = CommandSpotter(matcher) if early else CommandSpotter(matcher, None)
    events = [e for k in range(0, len(wav), 480) for e in rec.feed(wav[k : k + 480])]
    fired = [(spotter.spot(e), e) for e in events + rec.flush()]
    return [(m.text, e.type, e.end) for m, e in fired if m is not None]


def spelled(tok, parts: list[dict[str, float]]) -> torch.Tensor:
    """Log-probs, shape = (T, V): per part, 3 frames with the given symbol
    probabilities (the rest on blank) then 2 frames of blank."""
    frames = []
    for probs in parts:
        p = torch.full((len(tok),), 1e-4)
        for c, v in probs.items():
            p[tok.symbols.index(c)] = v
        p[0] = max(1 - sum(probs.values()), 1e-4)
        blank = torch.full((len(tok),), 1e-4)
        blank[0] = 1.0
        frames += [p] * 3 + [blank] * 2
    return torch.stack(frames).div(torch.stack(frames).sum(-1, keepdim=True)).log()


def test_spotter_fires_sure_matches_at_a_pause_and_once_per_utterance(model):
    from asr.stream.grammar import CommandSpotter
    from asr.stream.recognizer import Event

    _, tok = model
    matcher = CommandMatcher(Grammar.load(EXAMPLE), tok)
    sure = spelled(tok, [{"s": 0.95}, {"t": 0.95}, {"o": 0.95}, {"p": 0.95}])
    # "no" or "go": a match the grammar's threshold takes, not sure enough early
    unsure = spelled(tok, [{"n": 0.55, "g": 0.4}, {"o": 0.95}])
    assert 0.5 < matcher.match(unsure).confidence < 0.9

    def events(lp, start=1.0):
        return [Event(kind, "", start, start + 1, lp) for kind in ("pause", "final")]

    spotter = CommandSpotter(matcher)
    assert [spotter.spot(e) is not None for e in events(sure)] == [True, False]
    assert [spotter.spot(e) is not None for e in events(unsure, 3.0)] == [False, True]
    late = CommandSpotter(matcher, early_confidence=None)
    assert [late.spot(e) is not None for e in events(sure)] == [False, True]
    partial = Event("partial", "stop", 5.0, 5.5)
    assert spotter.spot(partial) is None  # partials never fire


@pytest.mark.parametrize(
    "path,text",
    [
        (ROOT / "asr/assets/clips/an238-mrjc2-b.sph", "stop"),  # AN4, 16 kHz
        (ROOT / "tests/data/3_jackson_0.wav", "three"),  # FSDD, 8 kHz
        (ROOT / "tests/data/7_lucas_1.wav", "seven"),
    ],
)
def test_a_sure_command_fires_early_and_once(model, path, text):
    from asr.audio.energy import speech_islands

    net, tok = model
    clip = load_audio(path)
    wav = np.concatenate([quiet(0.5), clip, quiet(1.0, 1)])
    speech_end = 0.5 + speech_islands(clip)[-1][1]
    early = fired_in_stream(net, tok, wav)
    late = fired_in_stream(net, tok, wav, early=False)
    assert [f[:2] for f in early] == [(text, "pause")]
    assert [f[:2] for f in late] == [(text, "final")]
    # three unvoiced VAD frames instead of the endpointer's 7 of 8
    assert early[0][2] <= speech_end + 0.3 and early[0][2] <= late[0][2] - 0.09


def test_a_command_followed_at_once_by_more_speech_does_not_fire(model):
    net, tok = model
    rows = dict((t, p) for p, t in clip_rows())
    stop, more = speech_of(rows["stop"]), speech_of(rows["enter forty one"])
    three, seven = (
        speech_of(ROOT / "tests/data" / n) for n in ("3_jackson_0.wav", "7_lucas_1.wav")
    )
    for command, rest in ((stop, more), (three, seven), (three, more)):
        wav = np.concatenate([quiet(0.5), command, rest, quiet(1.0, 1)])
        assert fired_in_stream(net, tok, wav) == []
        # alone, the same command fires
        alone = np.concatenate([quiet(0.5), command, quiet(1.0, 1)])
        assert len(fired_in_stream(net, tok, alone)) == 1


def test_sentences_noise_and_tones_fire_nothing_in_the_stream(model):
    net, tok = model
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    others = [load_audio(p) for p, text in clip_rows() if text != "stop"]
    for sound in [
        *others,
        (0.05 * rng.standard_normal(32000)).astype(np.float32),
        (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32),
    ]:
        wav = np.concatenate([quiet(0.5), sound, quiet(1.0, 1)])
        assert fired_in_stream(net, tok, wav) == []


def test_cli_commands_fire_early_unless_told_not_to(tmp_path, capsys):
    import soundfile as sf

    stop = load_audio(next(p for p, t in clip_rows() if t == "stop"))
    clip = tmp_path / "stop.wav"  # with a second of quiet after it
    sf.write(clip, np.concatenate([quiet(0.3), stop, quiet(1.0, 1)]), 16000)
    grammar = tmp_path / "g.yaml"
    grammar.write_text("commands:\n  - {phrase: stop, action: {emit: {state: 1}}}\n")
    ends = []
    for extra in ([], ["--early-ms", "0"]):
        args = ["commands", "--grammar", str(grammar), "--input", str(clip)]
        assert main([*args, "--speed", "0", "--json", *extra]) == 0
        lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        (fired,) = [x for x in lines if "command" in x]
        assert fired["text"] == "stop" and {"state": 1} in lines
        ends.append(fired["end"])
    assert ends[0] <= ends[1] - 0.09  # early: at the pause, not at the endpoint


def test_bench_commands_measures_firing_and_latency(model, capsys):
    from scripts import bench_commands as bench

    net, tok = model
    matcher = CommandMatcher(Grammar.load(EXAMPLE), tok)
    early = bench.parse_setting("ring=240,end=0.8,threads=1,pause=90,early=0.9")
    assert (early.cfg.padding_ms, early.cfg.pause_ms) == (240, 90)
    assert (early.early, early.threads) == (0.9, 1)
    late = bench.parse_setting("ring=240,end=0.8")
    rows = dict((t, p) for p, t in clip_rows())
    stop, sentence = load_audio(rows["stop"]), load_audio(rows["enter forty one"])
    end = 0.5 + bench.speech_end(stop)
    for setting in (early, late):
        for group, ref, clip in (
            ("commands", "stop", stop),
            ("sentences", None, sentence),
        ):
            wav = np.concatenate([quiet(0.5), clip, quiet(1.5, 1)])
            fired = bench.stream(net, tok, matcher, setting, wav)
            bench.tally(setting, group, ref, end, fired)
    assert (early.early_fires, late.early_fires) == (1, 0)
    assert early.delays[0] <= late.delays[0] - 0.09
    bench.report([early, late])
    out = capsys.readouterr().out
    assert out.count("| 1/1 (100.0%) | 0 | 0/1 | 0/0 |") == 2
    assert "| 1/1 | 1/1 (100.0%)" in out and "| 0/1 | 1/1 (100.0%)" in out
