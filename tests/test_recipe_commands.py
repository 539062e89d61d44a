"""recipes/commands (the bundled model's data) and scripts/eval_commands.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.stream.grammar import Grammar
from scripts.eval_commands import evaluate, evaluate_stream, format_table
from tests.conftest import ROOT, clip_rows, load_recipe_prepare, run_recipe

prepare = load_recipe_prepare("commands")


def test_command_words_are_the_grammars_single_words_and_digits():
    words = prepare.command_words()
    for w in ("up", "down", "left", "right", "on", "off", "rubout", "zero", "oh"):
        assert w in words
    assert not [w for w in words if " " in w or "<" in w]


def write_sets(tmp_path, fsdd_dev_speaker="nicolas", synth_dev_voice="flite:rms"):
    clip, text = clip_rows()[1]  # "enter forty one": not a command
    row = Utterance(str(clip), 1.0, text, "s")
    folders = {}
    for name, files in {
        "an4": {"train": [row], "dev": [row, Utterance(str(clip), 1.0, "stop", "d")]},
        "digits": {
            "train": [Utterance(str(clip), 0.5, "seven", "george")],
            "dev": [Utterance(str(clip), 0.5, "two", fsdd_dev_speaker)],
        },
        "synth": {"manifest": [Utterance(str(clip), 0.7, "left", "espeak:en-us+m1")]},
        "synth_dev": {"manifest": [Utterance(str(clip), 0.7, "up", synth_dev_voice)]},
        "nonspeech": {"manifest": [Utterance(str(clip), 0.9, "", "nonspeech:hum")]},
    }.items():
        folders[name] = tmp_path / name
        for stem, utts in files.items():
            write_manifest(folders[name] / f"{stem}.jsonl", utts)
    return folders


def run_prepare(folders, out, *extra):
    return prepare.main(
        ["--an4", str(folders["an4"]), "--digits", str(folders["digits"]),
         "--synth", str(folders["synth"]), "--synth-dev", str(folders["synth_dev"]),
         "--nonspeech", str(folders["nonspeech"]), "--out", str(out), *extra]
    )  # fmt: skip


def test_prepare_joins_the_sources_and_cuts_the_evaluation_sets(tmp_path):
    out = tmp_path / "out"
    assert run_prepare(write_sets(tmp_path), out) == 0
    train = read_manifest(out / "train.jsonl")
    assert [u.text for u in train] == ["enter forty one", "seven", "left"]
    assert [u.text for u in read_manifest(out / "an4_commands.jsonl")] == ["stop"]
    with_noise = read_manifest(out / "train_nonspeech.jsonl")
    assert [u.text for u in with_noise] == [u.text for u in train] + [""]
    assert len(read_manifest(out / "an4_dev.jsonl")) == 2
    assert [u.speaker for u in read_manifest(out / "synth_dev.jsonl")] == ["flite:rms"]
    raw = (out / "train.jsonl").read_text()
    assert str(clip_rows()[1][0].resolve()) in raw  # absolute: valid from anywhere
    assert not (out / "an4_dev_words.jsonl").exists()  # only with --dev-words


def test_prepare_cuts_the_grammar_words_out_of_an4_dev_phrases(tmp_path):
    """--dev-words: 'enter' and 'one' of 'enter forty one', each a clip of its own
    (the one-word 'stop' is in an4_commands already)."""
    import soundfile as sf

    out = tmp_path / "out"
    assert run_prepare(write_sets(tmp_path), out, "--dev-words") == 0
    words = read_manifest(out / "an4_dev_words.jsonl")
    assert [(u.text, u.speaker) for u in words] == [("enter", "s"), ("one", "s")]
    for u in words:
        assert Path(u.audio_filepath).parent == (out / "an4_dev_words").resolve()
        assert 0.1 < sf.info(u.audio_filepath).duration < 0.7  # a word, not all 2.5 s


def test_prepare_refuses_speakers_or_voices_in_train_and_test(tmp_path):
    with pytest.raises(SystemExit, match="FSDD speakers"):
        run_prepare(write_sets(tmp_path, fsdd_dev_speaker="george"), tmp_path / "o")
    with pytest.raises(SystemExit, match="voices"):
        run_prepare(
            write_sets(tmp_path, synth_dev_voice="espeak:en-us+m1"), tmp_path / "o"
        )


def test_eval_commands_scores_what_the_grammar_fires():
    model, tokenizer, _ = load_model(default_model_path())
    grammar = Grammar.load(ROOT / "examples" / "commands.yaml")
    utts = [Utterance(str(path), 1.0, text) for path, text in clip_rows()]
    counts = evaluate(model, tokenizer, grammar, utts)
    # the clips: "stop" (a command the bundled model knows) and 4 other utterances
    assert counts["stop"] == {**dict.fromkeys(counts["stop"], 0), "correct": 1}
    assert counts["<other>"]["rejected"] == 4
    # a wrong reference turns the same firing into "wrong"
    stop = [u for u in utts if u.text == "stop"][0]
    stop.text = "go"
    assert evaluate(model, tokenizer, grammar, [stop])["go"]["wrong"] == 1
    table = format_table(counts)
    assert "| stop | 1 | 1 | 0 | 0 | 0 |" in table
    assert "fired right: 1 (100.0%)" in table


def test_eval_commands_stream_plays_the_clips_through_the_endpointer():
    model, tokenizer, _ = load_model(default_model_path())
    grammar = Grammar.load(ROOT / "examples" / "commands.yaml")
    utts = [Utterance(str(path), 1.0, text) for path, text in clip_rows()]
    stop = [u for u in utts if u.text == "stop"]
    others = [u for u in utts if u.text != "stop"][:2]
    # the command between two sentences: it fires, and for its own clip only
    counts = evaluate_stream(model, tokenizer, grammar, [others[0], *stop, others[1]])
    assert counts["stop"]["correct"] == 1
    assert counts["<other>"] == {**dict.fromkeys(counts["<other>"], 0), "rejected": 2}
    stop[0].text = "go"
    assert evaluate_stream(model, tokenizer, grammar, stop)["go"]["wrong"] == 1


def test_eval_commands_pads_the_clips_when_asked(monkeypatch):
    import asr.audio.padding
    from asr.audio.padding import pad_edges

    seen = []

    def spy(wav, pad):
        out = pad_edges(wav, pad)
        seen.append((pad, len(out[0]) - len(wav)))
        return out

    monkeypatch.setattr(asr.audio.padding, "pad_edges", spy)  # as load_padded calls it
    model, tokenizer, _ = load_model(default_model_path())
    grammar = Grammar.load(ROOT / "examples" / "commands.yaml")
    utts = [Utterance(str(p), 1.0, text) for p, text in clip_rows() if text == "stop"]
    assert evaluate(model, tokenizer, grammar, utts)["stop"]["correct"] == 1
    assert evaluate(model, tokenizer, grammar, utts, pad_ms=900)["stop"]["correct"] == 1
    # AN4's "stop" has less than 900 ms of pause on some side: that side grows
    assert seen[0] == (0, 0) and seen[1][0] == 14400 and seen[1][1] > 0


def test_run_sh_overrides_reach_stage_5_without_undoing_its_epochs(tmp_path):
    """Extra arguments are Hydra overrides for both training stages, but stage 5's
    own settings come after them: `trainer.epochs=7` is stage 4's, not stage 5's
    (NS_EPOCHS sets those)."""
    calls = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    exp = tmp_path / "cmd"
    exp.mkdir()
    env = {"PY": str(fake), "EXP": str(exp), "INIT": "init.pt"}
    run_recipe(["bash", "recipes/commands/run.sh", "--stage", "4", "--stop-stage", "5",
                "trainer.epochs=7", "trainer.threads=1"], env)  # fmt: skip
    run_recipe(["bash", "recipes/commands/run.sh", "--stage", "5", "--stop-stage", "5",
                "trainer.epochs=7"], {**env, "NS_EPOCHS": "4"})  # fmt: skip
    stage4, stage5, stage5_ns4 = calls.read_text().splitlines()

    def last(args: str, key: str) -> str:
        return [a for a in args.split() if a.startswith(key + "=")][-1]

    assert last(stage4, "trainer.epochs") == "trainer.epochs=7"
    assert last(stage4, "trainer.init_from") == "trainer.init_from=init.pt"
    assert last(stage5, "trainer.epochs") == "trainer.epochs=10"
    assert last(stage5_ns4, "trainer.epochs") == "trainer.epochs=4"
    assert last(stage5, "trainer.init_from") == f"trainer.init_from={exp}/best.pt"
    assert "trainer.threads=1" in stage5.split()
