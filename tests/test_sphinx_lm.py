"""asr.decode.sphinx_lm and lm_prune: known answers from pocketsphinx's
en-us.lm.bin (recorded from pocketsphinx's own API), pruned models well formed, and
the ARPA they write scoring the same in KenLM. The model comes from the installed
pocketsphinx package (a dependency) or $SPHINX_LM_BIN; tests needing it skip
without it."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest

from asr.decode import lm_prune, sphinx_lm
from asr.decode.sphinx_lm import SphinxLM

HEADER_COUNTS = (72547, 2051547, 1669625)
STORED_COUNTS = [72547, 2051541, 1669625]  # 6 spare bigram slots, see NOTES.md
SUBPATH = Path("model/en-us/en-us.lm.bin")

# pocketsphinx NGramModel.prob([w, h1, h2]) (integer log base 1.0001, truncated
# toward zero) for the n-gram "h2 h1 w", recorded with pocketsphinx 5.1.1.
KNOWN = {
    ("the",): -31995,
    ("</s>",): -25929,
    ("zyuganov",): -170154,
    ("of", "the"): -16085,
    ("<s>", "i"): -24463,
    ("according", "to"): -537,
    ("a", "lot", "of"): -4076,
    ("<s>", "i", "think"): -24136,
    ("one", "of", "the"): -7041,
    ("going", "to", "be"): -15795,
    ("the", "of", "one"): -60217,  # backs off to "of one"
    ("zyuganov", "said", "no"): -44935,  # backs off
}
TOL = 1e-4  # one integer unit is 4.3e-5 in log10

SENTENCES = [
    "the cat sat on the mat",
    "i think that we should go home now",
    "according to the report the market fell",
    "go forward ten meters",
    "one of the most important things is to be honest",
    "it is going to be a long day",
    "thank you very much",
    "i don't know",
    "at the end of the day",
    "the united states of america",
    "zyuganov said no",  # zyuganov is not among the 20k words: <unk>
]


def _find_model() -> Path | None:
    candidates = []
    if os.environ.get("SPHINX_LM_BIN"):
        candidates.append(Path(os.environ["SPHINX_LM_BIN"]))
    spec = importlib.util.find_spec("pocketsphinx")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / SUBPATH)
    return next((p for p in candidates if p.is_file()), None)


MODEL = _find_model()
needs_model = pytest.mark.skipif(MODEL is None, reason="en-us.lm.bin not found")


@pytest.fixture(scope="module")
def lm() -> SphinxLM:
    assert MODEL is not None
    return sphinx_lm.read_sphinx_lm(MODEL)


@pytest.fixture(scope="module")
def pruned(lm: SphinxLM) -> SphinxLM:
    return lm_prune.prune(lm, max_words=20_000, max_ngrams={2: 500_000, 3: 300_000})


def _ids(lm: SphinxLM, words: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.array([[lm.word_id(w) for w in words]])


# --- the reader ---------------------------------------------------------------


@needs_model
def test_header_and_counts(lm: SphinxLM) -> None:
    assert lm.header_counts == HEADER_COUNTS
    assert lm.counts == STORED_COUNTS
    assert len(lm.vocab) == HEADER_COUNTS[0]
    assert lm.vocab == sorted(lm.vocab)  # Sphinx stores the words sorted
    assert {"<s>", "</s>", "the", "zyuganov"} <= set(lm.vocab)
    assert not {"<unk>", "<UNK>"} & set(lm.vocab)
    for grams, n in zip(lm.orders, (1, 2, 3)):
        assert grams.words.shape == (len(grams), n)
        assert grams.words.min() >= 0 and grams.words.max() < len(lm.vocab)
        assert np.isfinite(grams.log10_prob).all() and (grams.log10_prob <= 0).all()
    assert (lm.orders[2].log10_backoff == 0).all()


@needs_model
def test_unigrams_sum_to_one(lm: SphinxLM) -> None:
    """Checks the log base (1.0001) independently of pocketsphinx."""
    assert np.power(10.0, lm.orders[0].log10_prob).sum() == pytest.approx(1, abs=1e-4)


@needs_model
@pytest.mark.parametrize("words", list(KNOWN))
def test_known_answers(lm: SphinxLM, words: tuple[str, ...]) -> None:
    assert lm.score(words) == pytest.approx(
        KNOWN[words] * sphinx_lm.LOG10_OF_BASE, abs=TOL
    )
    explicit = lm.find(_ids(lm, words))[0] >= 0
    assert explicit == (words not in {("the", "of", "one"), ("zyuganov", "said", "no")})


@needs_model
def test_every_ngram_has_prefix_and_suffix(lm: SphinxLM) -> None:
    tri = lm.orders[2].words
    assert (lm.find(tri[:, :2]) >= 0).all()
    assert (lm.find(tri[:, 1:]) >= 0).all()


@needs_model
def test_random_ngrams_match_pocketsphinx(lm: SphinxLM) -> None:
    """Explicit n-grams of each order and back-off cases against pocketsphinx."""
    ps = pytest.importorskip("pocketsphinx")
    model = ps.NGramModel.readfile(str(MODEL))
    rng = np.random.default_rng(1)
    frequent = np.argsort(-lm.orders[0].log10_prob)[:300]
    queries = [g.words[rng.choice(len(g), 400, replace=False)] for g in lm.orders]
    queries.append(frequent[rng.integers(0, 300, (1500, 3))])  # mostly back-off
    for rows in queries:
        ours = lm.log10_cond_prob(rows)
        # pocketsphinx wants the predicted word first, then the history backwards
        theirs = [model.prob([lm.vocab[w] for w in row[::-1]]) for row in rows]
        np.testing.assert_allclose(
            ours, np.array(theirs) * sphinx_lm.LOG10_OF_BASE, atol=TOL
        )


# --- malformed files ------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a Sphinx trie language model"),
        (b"Darpa Trigram LM\0 and more bytes", "not a Sphinx trie language model"),
        (b"\\data\\\nngram 1=3\n", "not a Sphinx trie language model"),
        (sphinx_lm.TRIE_HEADER + bytes([0]) + bytes(12), "implausible n-gram order"),
        (
            sphinx_lm.TRIE_HEADER + bytes([3]) + np.array([5, 4, 3], "<u4").tobytes(),
            "truncated",
        ),
    ],
)
def test_malformed_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.lm.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        sphinx_lm.read_sphinx_lm(path)
    assert str(path) in str(err.value)


@needs_model
def test_truncated_real_file(tmp_path: Path) -> None:
    assert MODEL is not None
    data = MODEL.read_bytes()
    for cut in (100, 1_000_000, len(data) - 10):
        path = tmp_path / f"cut{cut}.lm.bin"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=str(path)):
            sphinx_lm.read_sphinx_lm(path)


# --- pruning ---------------------------------------------------------------------


@needs_model
def test_pruned_model_is_well_formed(lm: SphinxLM, pruned: SphinxLM) -> None:
    assert pruned.counts == [20_003, 500_000, 300_000]
    assert {"<s>", "</s>", "<unk>"} <= set(pruned.vocab)
    words = [w for w in pruned.vocab if w not in ("<s>", "</s>", "<unk>")]
    assert all(re.fullmatch(lm_prune.DEFAULT_WORD_PATTERN, w) for w in words)
    assert "e-mail" not in pruned.vocab and "'bout" not in pruned.vocab
    for n in (2, 3):
        grams = pruned.orders[n - 1].words
        assert (pruned.find(grams[:, :-1]) >= 0).all()  # prefix: the context
        assert (pruned.find(grams[:, 1:]) >= 0).all()  # suffix: the back-off
    # kept probabilities are the original ones
    rows = pruned.orders[2].words[:1000]
    old = np.array([[lm.word_id(pruned.vocab[w]) for w in row] for row in rows])
    np.testing.assert_array_equal(
        lm.orders[2].log10_prob[lm.find(old)], pruned.orders[2].log10_prob[:1000]
    )


@needs_model
@pytest.mark.parametrize("context", [("the",), ("of", "the"), ("<s>",), ("i", "think")])
def test_renormalized_contexts_keep_their_sum(
    lm: SphinxLM, pruned: SphinxLM, context: tuple[str, ...]
) -> None:
    def total(model: SphinxLM) -> float:
        ids = np.array([model.word_id(w) for w in context])
        nxt = np.array([i for i, w in enumerate(model.vocab) if w != "<s>"])
        rows = np.column_stack([np.tile(ids, (len(nxt), 1)), nxt])
        return float(np.power(10.0, model.log10_cond_prob(rows)).sum())

    # equal up to the lower orders' own quantisation error (their sums are not 1)
    assert total(pruned) == pytest.approx(total(lm), abs=1e-4)
    assert total(pruned) == pytest.approx(1.0, abs=0.01)


@needs_model
def test_no_pruning_keeps_backoffs(lm: SphinxLM) -> None:
    full = lm_prune.prune(lm, word_pattern=None)
    assert full.counts == [len(lm.vocab) + 1, *lm.counts[1:]]  # + <unk>
    for old, new in zip(lm.orders, full.orders):
        np.testing.assert_allclose(new.log10_backoff[: len(old)], old.log10_backoff)


def _tiny_model() -> SphinxLM:
    """<s> a b </s> with an <UNK>, the word 'x-y' and a few bigrams."""
    vocab = ["</s>", "<UNK>", "<s>", "a", "b", "x-y"]
    lp = np.log10([0.3, 0.05, 1e-99, 0.4, 0.2, 0.05])
    uni = sphinx_lm.NGrams(
        np.arange(6, dtype=np.int32)[:, None], lp, np.array([0, 0, -0.3, -0.2, 0, 0])
    )
    words = np.array([[2, 3], [3, 4], [4, 0], [2, 5]], dtype=np.int32)
    bi = sphinx_lm.NGrams(words, np.log10([0.6, 0.5, 0.7, 0.2]), np.zeros(4))
    return SphinxLM(vocab, [uni, bi])


def test_unk_alias_and_word_filter(tmp_path: Path) -> None:
    lm = _tiny_model()
    pruned = lm_prune.write_arpa(lm, tmp_path / "tiny.arpa", renormalize=False)
    assert pruned.vocab == ["</s>", "<unk>", "<s>", "a", "b"]
    assert 10 ** pruned.score(["<unk>"]) == pytest.approx(0.05 + 0.05)  # + 'x-y'
    assert pruned.counts == [5, 3]  # '<s> x-y' went with its word
    text = (tmp_path / "tiny.arpa").read_text()
    assert "\t<s> a\n" in text and "<UNK>" not in text and "x-y" not in text
    assert pruned.score(["a", "b"]) == pytest.approx(np.log10(0.5))
    assert pruned.score(["b", "a"]) == pytest.approx(0 + np.log10(0.4))  # bo(b) = 0
    assert pruned.score(["a", "a"]) == pytest.approx(-0.2 + np.log10(0.4))


# --- ARPA + KenLM -----------------------------------------------------------------


def _kenlm_sentence(kenlm, dictionary, sentence: str) -> float:
    state, total = kenlm.start(False), 0.0
    for word in sentence.split():
        key = word if dictionary.contains(word) else "<unk>"
        state, score = kenlm.score(state, dictionary.get_index(key))
        total += score
    return total + kenlm.finish(state)[1]


def _same_lookups(
    lm: SphinxLM,
    pruned: SphinxLM,
    sentence: str,
    need_explicit: bool,
) -> bool:
    """True if scoring the sentence touches the same n-grams in both models
    (and, with need_explicit, every word is scored by an n-gram without back-off)."""
    words = ["<s>", *sentence.split(), "</s>"]
    if any(pruned.word_id(w) < 0 for w in words):
        return False
    for i in range(1, len(words)):
        window = words[max(0, i - lm.order + 1) : i + 1]
        if need_explicit and pruned.find(_ids(pruned, window))[0] < 0:
            return False
        for k in range(1, len(window) + 1):
            for part in (window[-k:], window[-k:-1]):
                if not part:
                    continue
                kept = pruned.find(_ids(pruned, part))[0] >= 0
                if (lm.find(_ids(lm, part))[0] >= 0) != kept:
                    return False
    return True


@needs_model
@pytest.mark.parametrize("renormalize", [True, False])
def test_arpa_loads_in_kenlm_and_scores_match(
    lm: SphinxLM, tmp_path: Path, renormalize: bool
) -> None:
    decoder = pytest.importorskip("flashlight.lib.text.decoder")
    dictionary_mod = pytest.importorskip("flashlight.lib.text.dictionary")
    path = tmp_path / "lm.arpa"
    pruned = lm_prune.write_arpa(
        lm, path, 20_000, {2: 500_000, 3: 300_000}, renormalize=renormalize
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[1:4] == [f"ngram {n}={c}" for n, c in enumerate(pruned.counts, 1)]
    assert not list(tmp_path.glob("*.tmp"))
    dictionary = dictionary_mod.Dictionary(pruned.vocab)
    kenlm = decoder.KenLM(str(path), dictionary)
    same = 0
    for sentence in SENTENCES:
        got = _kenlm_sentence(kenlm, dictionary, sentence)
        words = [w if pruned.word_id(w) >= 0 else "<unk>" for w in sentence.split()]
        assert got == pytest.approx(pruned.sentence_log10prob(words), abs=TOL)
        # with renormalize, back-off weights of pruned contexts change: compare
        # only sentences that never back off
        if _same_lookups(lm, pruned, sentence, need_explicit=renormalize):
            same += 1
            assert got == pytest.approx(lm.sentence_log10prob(sentence), abs=TOL)
    assert same >= 3  # the comparison with Sphinx really happened


@needs_model
def test_failed_write_leaves_old_file(
    lm: SphinxLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lm.arpa"
    path.write_text("old")
    small = lm_prune.prune(lm, max_words=100, max_ngrams={2: 100, 3: 100})

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(lm_prune, "_arpa_lines", boom)
    with pytest.raises(RuntimeError):
        lm_prune.write_arpa_file(small, path)
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]
