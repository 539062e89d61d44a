"""--lm english: the general-English LM derived from pocketsphinx's en-us model,
built once into the cache and used by the beam decoder (asr.decode.english_lm)."""

from __future__ import annotations

import sys

import pytest

from asr.cli.app import main
from asr.decode import english_lm
from asr.decode.decoder import lm_words
from tests.conftest import clip_rows

pytest.importorskip("pocketsphinx")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ASR_CACHE_DIR", str(tmp_path / "a"))
    assert english_lm.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("ASR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert english_lm.cache_dir() == tmp_path / "x" / "asr"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert english_lm.cache_dir() == tmp_path / "h" / ".cache" / "asr"


def test_lm_english_writes_a_pruned_arpa(tmp_path, capsys):
    out = tmp_path / "small.arpa"
    sizes = ["--max-words", "2000", "--max-bigrams", "20000", "--max-trigrams", "9000"]
    assert main(["lm", "english", "--output", str(out), *sizes]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    head = out.read_text().split("\n\n")[0]
    # 2000 words + <s>, </s>, <unk>; the n-gram bounds hold exactly here
    assert head.splitlines()[1:] == ["ngram 1=2003", "ngram 2=20000", "ngram 3=9000"]
    words = lm_words(out)
    assert len(words) == 2000 and {"the", "of", "and", "don't"} <= set(words)
    assert all(w == w.lower() and "-" not in w and "." not in w for w in words)


def test_english_is_built_once_into_the_cache(english_lm_cache, monkeypatch, capsys):
    folder, path = english_lm_cache
    assert path == folder / "lm" / english_lm.EnglishLMSize().file_name
    assert len(lm_words(path)) == 50_000
    monkeypatch.setenv("ASR_CACHE_DIR", str(folder))
    built = path.stat().st_mtime_ns
    assert english_lm.resolve_lm("english") == str(path)
    assert (
        path.stat().st_mtime_ns == built and "building" not in capsys.readouterr().err
    )
    assert english_lm.resolve_lm("other.arpa") == "other.arpa"
    assert english_lm.resolve_lm(None) is None


def test_transcribe_with_lm_english(english_lm_cache, monkeypatch, capsys):
    folder, path = english_lm_cache
    monkeypatch.setenv("ASR_CACHE_DIR", str(folder))
    clips = [str(p) for p, _ in clip_rows()]
    assert main(["transcribe", *clips, "--lm", "english", "--beam-size", "8"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(clips)
    vocab = set(lm_words(path))
    words = [w for line in lines for w in line.split("\t")[1].split()]
    assert words and set(words) <= vocab  # every word is one of the LM's


def test_missing_pocketsphinx_is_one_clear_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(ValueError, match="pip install pocketsphinx"):
        english_lm.sphinx_model_path()
