"""recipes/commands/real_clips.py (prompt selection) and scripts/spot_words.py."""

from __future__ import annotations

import sys

from conftest import ROOT, load_recipe_prepare

from asr.stream.grammar import Grammar

EXAMPLE = ROOT / "examples" / "commands.yaml"

sys.path.insert(0, str(ROOT / "scripts"))
import spot_words  # noqa: E402


def real_clips():
    return load_recipe_prepare("commands", "real_clips")


def test_prompts_with_command_words_and_the_digits_are_picked():
    listing = "\n".join(
        [
            "; Asterisk core sounds",
            "agent-loggedoff: Agent Logged off.",
            "dictate/forhelp: press 0 for help",
            "digits/7: seven",
            "digits/oh: oh",
            "digits/10: ten",
            "letters/ascii91: left bracket",
            "vm-goodbye: Goodbye.",
            "vm-long: Press 1 to enter a number, press 2 to leave it, or press 3 now.",
        ]
    )
    module = real_clips()
    assert len(module.COMMAND_WORDS) == 16 and "rubout" in module.COMMAND_WORDS
    picked = dict(module.asterisk_prompts(listing))
    assert picked == {
        "agent-loggedoff": "agent logged off",
        "dictate/forhelp": "press zero for help",
        "digits/7": "seven",
        "digits/oh": "oh",
        "letters/ascii91": "left bracket",
    }  # no command word, not a digit, or too long: left out


def test_spotting_counts_hits_and_false_alarms():
    refs = ["agent logged off", "left bracket", "no", "press one to enter"]
    hyps = ["agent off off", "one nine", "no", "press one two enter"]
    table = spot_words.spot(refs, hyps, Grammar.load(EXAMPLE).words())
    assert table["off"] == {"occurrences": 1, "hits": 1, "false_alarms": 1}
    assert table["left"]["occurrences"] == 1 and table["left"]["hits"] == 0
    assert table["one"] == {"occurrences": 1, "hits": 1, "false_alarms": 1}
    assert table["two"]["false_alarms"] == 1 and table["no"]["hits"] == 1
    text = spot_words.format_table(table)
    assert "| **all** | 5 | 4 | 4 |" in text and "| up |" not in text


def test_command_words_are_cut_out_of_phrases_at_their_aligned_times(tmp_path):
    import soundfile as sf
    from conftest import clip_rows

    from asr.data.manifest import Utterance

    (path, text), *_ = [(p, t) for p, t in clip_rows() if t.startswith("enter ")]
    phrase = Utterance(str(path), sf.info(str(path)).duration, text, "an4")
    alone = Utterance(str(path), 1.0, "stop", "an4")  # one word: left as it is
    (cut,) = real_clips().cut_words([phrase, alone], tmp_path / "w")
    assert cut.text == "enter" and cut.speaker == "an4"
    wav, rate = sf.read(cut.audio_filepath)
    # "enter" of "enter forty one": about 0.3-0.6 s, a fraction of the phrase
    assert rate == 16000 and 0.2 < len(wav) / rate < 0.7 < phrase.duration
    assert cut.duration == len(wav) / rate
