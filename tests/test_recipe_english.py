"""recipes/english: speaker splits per corpus and the joined sets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asr.data.lexicon import Lexicon
from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.data.text import PhoneTokenizer
from tests.conftest import load_recipe_prepare

prepare = load_recipe_prepare("english")


def fake_corpus(path: Path, n_speakers: int, per_speaker: int) -> None:
    utts = [
        Utterance(f"/audio/{path.stem}/{s}_{k}.wav", 1.0 + k, f"text {k}", str(s))
        for s in range(n_speakers)
        for k in range(per_speaker)
    ]
    write_manifest(path, utts)


def test_whole_speakers_held_out_per_corpus(tmp_path):
    commands = tmp_path / "commands"
    for name in (*prepare.COMMAND_SETS, "train_nonspeech"):
        fake_corpus(commands / f"{name}.jsonl", 2, 2)
    fake_corpus(tmp_path / "ls.jsonl", 6, 3)
    fake_corpus(tmp_path / "so.jsonl", 10, 2)  # the same speaker ids as ls
    out = tmp_path / "out"
    args = ["--commands", str(commands), "--librispeech", str(tmp_path / "ls.jsonl")]
    args += ["--speechocean", str(tmp_path / "so.jsonl"), "--out", str(out)]
    assert (
        prepare.main([*args, "--ls-dev-speakers", "2", "--so-dev-speakers", "3"]) == 0
    )
    sets = {p.stem: read_manifest(p) for p in out.glob("*.jsonl")}
    speakers = {name: {u.speaker for u in utts} for name, utts in sets.items()}
    assert len(speakers["ls_dev"]) == 2 and len(speakers["ls_train"]) == 4
    assert len(speakers["so_dev"]) == 3 and len(speakers["so_train"]) == 7
    assert all(s.startswith("ls:") for s in speakers["ls_dev"] | speakers["ls_train"])
    assert not speakers["train"] & (speakers["ls_dev"] | speakers["so_dev"])
    assert len(sets["train"]) == 4 + 4 * 3 + 7 * 2  # commands + ls + so training
    dev = sets["an4_dev"] + sets["ls_dev"] + sets["so_dev"]
    assert [u.audio_filepath for u in sets["dev"]] == [u.audio_filepath for u in dev]
    # the same seed gives the same split
    again = tmp_path / "again"
    prepare.main(
        [*args[:-1], str(again), "--ls-dev-speakers", "2", "--so-dev-speakers", "3"]
    )
    assert (again / "ls_dev.jsonl").read_text() == (out / "ls_dev.jsonl").read_text()
    line = json.loads((out / "so_dev.jsonl").read_text().splitlines()[0])
    assert Path(line["audio_filepath"]).is_absolute()
    assert not (out / "train_synth.jsonl").exists()
    # synthetic sentences (relative paths, as synthesize.py writes them) join
    # the training set in train_synth only
    synth = tmp_path / "synth"
    synth.mkdir()
    (synth / "manifest.jsonl").write_text(
        json.dumps({"audio_filepath": "wav/0.wav", "duration": 2.0, "text": "hi"})
        + "\n"
    )
    synth_args = ["--synth-sentences", str(synth / "manifest.jsonl")]
    prepare.main(
        [*args, "--ls-dev-speakers", "2", "--so-dev-speakers", "3", *synth_args]
    )
    joined = read_manifest(out / "train_synth.jsonl")
    assert joined[:-1] == read_manifest(out / "train.jsonl")
    assert joined[-1].audio_filepath == str(synth / "wav" / "0.wav")


def test_training_subsets_take_whole_speakers_nested(tmp_path):
    commands = tmp_path / "commands"
    for name in (*prepare.COMMAND_SETS, "train_nonspeech"):
        fake_corpus(commands / f"{name}.jsonl", 2, 2)
    fake_corpus(tmp_path / "ls.jsonl", 10, 3)
    fake_corpus(tmp_path / "so.jsonl", 22, 2)
    out = tmp_path / "out"
    args = ["--commands", str(commands), "--librispeech", str(tmp_path / "ls.jsonl")]
    args += ["--speechocean", str(tmp_path / "so.jsonl"), "--out", str(out)]
    args += ["--ls-dev-speakers", "2", "--so-dev-speakers", "2"]
    assert prepare.main([*args, "--fractions", "0.25", "0.5"]) == 0
    sets = {p.stem: read_manifest(p) for p in out.glob("*.jsonl")}
    speakers = {name: {u.speaker for u in utts} for name, utts in sets.items()}
    for name, n_ls, n_so in (("train_25", 2, 5), ("train_50", 4, 10)):
        ls = {s for s in speakers[name] if s.startswith("ls:")}
        so = {s for s in speakers[name] if s.startswith("so:")}
        assert (len(ls), len(so)) == (n_ls, n_so)  # of 8 and 20 training speakers
        # whole speakers: every utterance of a chosen speaker
        chosen = [u for u in sets["train"] if u.speaker in ls | so]
        assert len([u for u in sets[name] if u.speaker in ls | so]) == len(chosen)
        # the commands part as in train
        assert sets[name][:4] == sets["train"][:4]
    assert speakers["train_25"] < speakers["train_50"] < speakers["train"]
    with pytest.raises(SystemExit):
        prepare.main([*args, "--fractions", "1.5"])


def test_own_words_cuts_grammar_phrases_and_other_spans(tmp_path, an4_manifest):
    """own_words.py: every grammar phrase (one word or several) is cut out of the
    sentences at its aligned times and read back as that phrase; the other clips
    hold no grammar word."""
    import soundfile as sf

    from asr.decode.decoder import DecodingOptions
    from asr.model.bundled import default_model_path
    from asr.model.checkpoint import load_model
    from asr.transcribe import Transcriber

    own = load_recipe_prepare("english", "own_words")
    grammar = tmp_path / "g.yaml"
    grammar.write_text(
        "commands:\n"
        "  - {phrase: stop, action: {emit: {a: 1}}}\n"
        "  - {phrase: forty one, action: {emit: {a: 2}}}\n"
        "  - {phrase: two one three, action: {emit: {a: 3}}}\n"
    )
    model = default_model_path()
    out = tmp_path / "own"
    args = [str(an4_manifest), "--grammar", str(grammar), "--model", str(model)]
    assert own.main([*args, "--out", str(out)]) == 0
    phrases = read_manifest(out / "phrases.jsonl")
    others = read_manifest(out / "others.jsonl")
    assert [u.text for u in phrases] == ["stop", "forty one", "two one three"]
    sources = {u.text: u.duration for u in read_manifest(an4_manifest)}
    assert phrases[2].duration < sources["one five two one three"] - 0.4
    assert phrases[1].duration < sources["enter forty one"] - 0.2
    grammar_words = {"stop", "forty", "one", "two", "three"}
    assert others and all(not grammar_words & set(u.text.split()) for u in others)
    assert all(1 <= len(u.text.split()) <= 2 for u in others)
    for u in phrases + others:
        wav, rate = sf.read(u.audio_filepath)
        assert rate == 16000 and abs(len(wav) / rate - u.duration) < 1e-3
    net, tok, _ = load_model(model)
    reader = Transcriber(net, tok, DecodingOptions(pad_ms=200))
    heard = [t.text for t in reader.transcribe_files(u.audio_filepath for u in phrases)]
    assert heard == [u.text for u in phrases]


TINY_ARPA = """\\data\\
ngram 1=6
ngram 2=5
ngram 3=2

\\1-grams:
-1.0 </s>
-99 <s> -0.3
-0.5 turn -0.3
-0.5 on -0.3
-0.7 the -0.3
-0.7 light's -0.3

\\2-grams:
0.0 <s> turn
-0.1 turn on
-0.2 on the
-0.05 the light's
0.0 light's </s>

\\3-grams:
0.0 <s> turn on
0.0 turn on the

\\end\\
"""


def test_sentences_follow_the_lm_and_are_reproducible(tmp_path):
    sentences = load_recipe_prepare("english", "sentences")
    arpa = tmp_path / "tiny.arpa"
    arpa.write_text(TINY_ARPA)
    sampler = sentences.NGramSampler(arpa)
    assert sampler.ngrams[3][("<s>", "turn")] == (["on"], [1.0])
    got = sentences.sample_sentences(sampler, 3, 2, 8, seed=0)
    # <s> turn on the: the trigrams and bigrams hold all the mass on this path;
    # after "the" a bigram is drawn 89% of the time, else a unigram
    assert got[0].startswith("turn on the")
    assert len(got) == len(set(got)) and all(2 <= len(s.split()) <= 8 for s in got)
    assert all(set(s.split()) <= {"turn", "on", "the", "light's"} for s in got)
    assert sentences.sample_sentences(sampler, 3, 2, 8, seed=0) == got
    out = tmp_path / "s.txt"
    args = ["--lm", str(arpa), "--count", "2", "--min-words", "2", "--out", str(out)]
    assert sentences.main(args) == 0
    assert out.read_text().splitlines() == got[:2]


@pytest.mark.skipif(shutil.which("festival") is None, reason="festival missing")
def test_lexicon_pronounces_the_words_cmudict_lacks(tmp_path):
    lexicon = load_recipe_prepare("english", "lexicon")
    manifest = tmp_path / "m.jsonl"
    write_manifest(
        manifest,
        [
            Utterance("/a.wav", 1.0, "the kirkleatham yeast", "s"),
            Utterance("/b.wav", 1.0, "shimerda's cat", "s"),
        ],
    )
    assert lexicon.missing_words([str(manifest)]) == ["kirkleatham", "shimerda's"]
    out = tmp_path / "extra.dict"
    subprocess.run(
        [sys.executable, str(lexicon.__file__), str(manifest), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    got = Lexicon.read(out)
    assert sorted(got.entries) == ["kirkleatham", "shimerda's"]
    (kirk,) = got.pronunciations("kirkleatham")
    assert kirk[:2] == ("K", "ER") and kirk[-1] == "M"  # festival: k er k ax l th ax m
    assert got.pronunciations("shimerda's")[0][:2] == ("SH", "AY")
    # a phone run now takes every word
    tok = PhoneTokenizer.build(got)
    assert tok.unknown_words("the kirkleatham yeast shimerda's cat") == []
