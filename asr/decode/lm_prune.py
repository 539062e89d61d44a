"""Shrink an n-gram model read by sphinx_lm.py for a fast CTC beam search and
write it as ARPA (which KenLM, inside flashlight-text, loads).

The vocabulary becomes the N most probable words that asr.data.text can produce
(lower-case a-z, digits, inner apostrophes: ``a.``, ``e-mail`` or ``'bout`` can never
be decoded, so they go, with their mass, to an added ``<unk>``). Bigrams and
trigrams are ranked by how much they improve on their back-off estimate, weighted
by their probability (Seymore & Rosenfeld), and the best K per order stay; every
kept n-gram's prefix and suffix stay too, so the model is well formed. Back-off
weights of contexts that lost n-grams are recomputed so each context's
distribution keeps its sum; untouched contexts keep theirs exactly.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from asr.decode.sphinx_lm import (
    BOS,
    EOS,
    KENLM_MISSING_UNK,
    UNK,
    UNK_ALIASES,
    NGrams,
    SphinxLM,
)

# What asr.data.text.normalize_text can emit as one word: a-z, digits, inner
# apostrophes.
DEFAULT_WORD_PATTERN = r"[a-z0-9](?:[a-z0-9']*[a-z0-9])?"


def _unk_id(vocab: Sequence[str]) -> int:
    """Index of the first <unk>/<UNK> in vocab, -1 if there is none."""
    return next((i for i, w in enumerate(vocab) if w in UNK_ALIASES), -1)


def select_vocab(
    lm: SphinxLM, max_words: int | None, word_pattern: str | None
) -> np.ndarray:
    """Boolean mask of the words to keep: <s>, </s>, <unk> and the max_words most
    probable unigrams among those matching word_pattern (all of them if None)."""
    special = np.array([w in (BOS, EOS) for w in lm.vocab])
    if _unk_id(lm.vocab) >= 0:
        special[_unk_id(lm.vocab)] = True
    eligible = ~special & ~np.isin(lm.vocab, UNK_ALIASES)  # a 2nd alias: dropped
    if word_pattern is not None:
        rx = re.compile(word_pattern)
        eligible &= np.array([rx.fullmatch(w) is not None for w in lm.vocab])
    keep = special.copy()
    cand = np.flatnonzero(eligible)
    if max_words is not None and max_words < len(cand):
        order = np.argsort(-lm.orders[0].log10_prob[cand], kind="stable")
        cand = cand[order[:max_words]]
    keep[cand] = True
    return keep


def _weighted_difference(lm: SphinxLM, n: int, rows: np.ndarray) -> np.ndarray:
    """Pruning score P(h, w) * (log P(w|h) - log P_backoff(w|h)) of n-gram rows
    (Seymore & Rosenfeld); n-grams the back-off estimates well score near 0.

    P(h) is the chain-rule probability of the history, with P(<s>) taken as
    P(</s>) (as often as sentences end, they start; the model says -99).
    """
    words = lm.orders[n - 1].words[rows].astype(np.int64)
    lp = lm.orders[n - 1].log10_prob[rows]
    ctx = lm.find(words[:, :-1])
    bo = np.where(ctx >= 0, lm.orders[n - 2].log10_backoff[ctx], 0.0)
    lp_backoff = bo + lm.log10_cond_prob(words[:, 1:])
    first = lm.orders[0].log10_prob.copy()
    if lm.word_id(BOS) >= 0 and lm.word_id(EOS) >= 0:
        first[lm.word_id(BOS)] = first[lm.word_id(EOS)]
    lp_hist = first[words[:, 0]]
    for j in range(1, n - 1):
        lp_hist = lp_hist + lm.log10_cond_prob(words[:, : j + 1])
    return np.power(10.0, lp_hist + lp) * (lp - lp_backoff)


def _top_ngrams(
    lm: SphinxLM, n: int, keep_word: np.ndarray, required: np.ndarray, limit: int | None
) -> np.ndarray:
    """Mask of the order-n rows to keep: the required ones plus the best-scoring
    others made of kept words only, limit rows in all where possible."""
    keep = required.copy()
    cand = np.flatnonzero(keep_word[lm.orders[n - 1].words].all(axis=1) & ~required)
    if limit is not None and int(required.sum()) + len(cand) > limit:
        take = max(limit - int(required.sum()), 0)
        score = _weighted_difference(lm, n, cand)
        cand = cand[np.argsort(-score, kind="stable")[:take]]
    keep[cand] = True
    return keep


def _mark(size: int, *indices: np.ndarray) -> np.ndarray:
    """Boolean mask of length size, True at the given indices (-1 entries ignored)."""
    mask = np.zeros(size, dtype=bool)
    for idx in indices:
        mask[idx[idx >= 0]] = True
    return mask


def _well_formed(
    lm: SphinxLM, keep_word: np.ndarray, kept: dict[int, np.ndarray]
) -> list[np.ndarray]:
    """Lowest order first, drop n-grams whose prefix or suffix was not kept;
    returns the kept row indices per order >= 2."""
    below = keep_word
    out = []
    for n in range(2, lm.order + 1):
        rows = np.flatnonzero(kept[n])
        words = lm.orders[n - 1].words[rows]
        ok = np.ones(len(rows), dtype=bool)
        for idx in (lm.find(words[:, :-1]), lm.find(words[:, 1:])):
            ok &= (idx >= 0) & below[np.maximum(idx, 0)]
        below = _mark(len(kept[n]), rows[ok])
        out.append(rows[ok])
    return out


def _select_ngrams(
    lm: SphinxLM, keep_word: np.ndarray, max_ngrams: Mapping[int, int]
) -> list[np.ndarray]:
    """Per order >= 2, the sorted row indices to keep.

    Highest order first: candidates use only kept words; the top max_ngrams[n] by
    weighted difference are kept; the prefix and suffix of every kept n-gram are
    forced into the order below, so that the model stays well formed.
    """
    kept: dict[int, np.ndarray] = {}
    required = np.zeros(len(lm.orders[-1]), dtype=bool)
    for n in range(lm.order, 1, -1):
        kept[n] = _top_ngrams(lm, n, keep_word, required, max_ngrams.get(n))
        words = lm.orders[n - 1].words[kept[n]]
        prefix, suffix = lm.find(words[:, :-1]), lm.find(words[:, 1:])
        required = _mark(len(lm.orders[n - 2]), prefix, suffix)
    return _well_formed(lm, keep_word, kept)


def _remap(lm: SphinxLM, keep_word: np.ndarray) -> tuple[list[str], np.ndarray]:
    """New vocabulary (kept words in their old order, <unk> last) and old->new ids."""
    old_to_new = np.full(len(lm.vocab), -1, dtype=np.int64)
    old_to_new[keep_word] = np.arange(int(keep_word.sum()))
    vocab = [w for w, k in zip(lm.vocab, keep_word) if k]
    unk = _unk_id(lm.vocab)
    if unk >= 0:
        vocab[old_to_new[unk]] = UNK
    else:
        vocab.append(UNK)
    return vocab, old_to_new


def _unk_log10prob(
    lm: SphinxLM, keep_word: np.ndarray, unk_log10prob: float | None
) -> float:
    """Given value, else the old <unk> mass plus the mass of the dropped words."""
    if unk_log10prob is not None:
        return float(unk_log10prob)
    probs = np.power(10.0, lm.orders[0].log10_prob)
    mass = probs[~keep_word].sum()
    old = _unk_id(lm.vocab)
    mass += probs[old] if old >= 0 else 0.0
    return math.log10(mass) if mass > 0 else KENLM_MISSING_UNK


def _subset(
    lm: SphinxLM,
    keep_word: np.ndarray,
    rows: list[np.ndarray],
    unk_log10prob: float | None,
) -> SphinxLM:
    """The model restricted to the kept words and n-gram rows, with <unk>."""
    vocab, old_to_new = _remap(lm, keep_word)
    uni = lm.orders[0]
    probs, bos = uni.log10_prob[keep_word], uni.log10_backoff[keep_word]
    if len(vocab) > len(probs):  # <unk> was added
        probs, bos = np.append(probs, 0.0), np.append(bos, 0.0)
    probs[vocab.index(UNK)] = _unk_log10prob(lm, keep_word, unk_log10prob)
    ids = np.arange(len(vocab), dtype=np.int32)[:, None]
    orders = [NGrams(ids, probs, bos)]
    for old, r in zip(lm.orders[1:], rows):
        words = old_to_new[old.words[r]].astype(np.int32)
        orders.append(NGrams(words, old.log10_prob[r], old.log10_backoff[r].copy()))
    return SphinxLM(vocab, orders, tuple(len(o) for o in orders), lm.source)


def prune(
    lm: SphinxLM,
    max_words: int | None = None,
    max_ngrams: Mapping[int, int] | None = None,
    word_pattern: str | None = DEFAULT_WORD_PATTERN,
    unk_log10prob: float | None = None,
    renormalize: bool = True,
) -> SphinxLM:
    """A smaller, well-formed copy of ``lm``.

    max_words: keep this many most probable unigrams (plus <s>, </s>, <unk>).
    max_ngrams: {order: count} upper bound per order >= 2 (prefixes/suffixes of kept
        longer n-grams are always kept, so a lower order may exceed its bound).
    word_pattern: regex a kept word must match in full (None: keep every word).
    unk_log10prob: log10 P(<unk>); default: mass of the dropped words (or -100).
    renormalize: adjust the back-off weights of contexts that lost n-grams (or whose
        lower-order estimate changed) so each context's distribution keeps its sum;
        untouched contexts keep their weights exactly.
    """
    keep_word = select_vocab(lm, max_words, word_pattern)
    rows = _select_ngrams(lm, keep_word, max_ngrams or {})
    new = _subset(lm, keep_word, rows, unk_log10prob)
    if renormalize:
        _renormalize(new, lm, [np.flatnonzero(keep_word), *rows])
    return new


def _child_mass(lm: SphinxLM, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per n-gram h of order n, over the (n+1)-grams (h, w): sum of P(w|h), sum of
    the back-off estimate P(w|h minus its oldest word), and their number."""
    children = lm.orders[n].words.astype(np.int64)
    parent = lm.find(children[:, :-1])
    size = len(lm.orders[n - 1])
    p = np.bincount(parent, np.power(10.0, lm.orders[n].log10_prob), size)
    low = np.power(10.0, lm.log10_cond_prob(children[:, 1:]))
    return p, np.bincount(parent, low, size), np.bincount(parent, minlength=size)


def _renormalize(new: SphinxLM, old: SphinxLM, old_rows: list[np.ndarray]) -> None:
    """Recompute the back-off weights of ``new`` in place, lowest order first.

    bo(h) = leftover(h) / (1 - sum over kept w of P_lower(w|h')), where leftover is
    the back-off mass the old model gave h (10^bo_old * its old denominator) plus
    the probability of the n-grams (h, w) pruned away. A context that lost nothing
    and whose lower orders did not change keeps its weight; contexts without kept
    continuations get 0. (Recomputing from the quantised probabilities alone would
    be far off for contexts like "according" whose continuations hold ~99%.)
    """
    for n in range(1, new.order):
        full_p, full_low, _ = _child_mass(old, n)
        kept_p, kept_low, count = _child_mass(new, n)
        r = old_rows[n - 1]
        m = len(r)  # contexts taken from the old model (an added <unk> follows)
        ctx = new.orders[n - 1]
        old_bo, old_den = ctx.log10_backoff[:m], 1.0 - full_low[r]
        leftover = np.where(
            old_den > 1e-6,
            np.power(10.0, old_bo) * np.maximum(old_den, 1e-6),
            np.maximum(1.0 - full_p[r], 0.0),
        )
        num = leftover + full_p[r] - kept_p[:m]
        den = 1.0 - kept_low[:m]
        ok = (num > 1e-12) & (den > 1e-6)
        bo = np.where(ok, np.log10(np.where(ok, num / den, 1.0)), old_bo)
        bo = np.where(np.abs(bo - old_bo) < 1e-9, old_bo, bo)  # rounding noise
        ctx.log10_backoff = np.where(
            count > 0, np.append(bo, [0.0] * (len(ctx) - m)), 0.0
        )


# ---------------------------------------------------------------------------
# Writing ARPA


def _fmt(values: np.ndarray) -> np.ndarray:
    """'%.6f' strings (object array), with -0.000000 written as 0.000000."""
    return np.array([f"{v:.6f}" for v in (values + 0.0).tolist()], dtype=object)


def _arpa_lines(lm: SphinxLM, n: int, chunk: int = 500_000) -> Iterator[str]:
    """Yield the text of the n-gram section in chunks: prob TAB words [TAB bo]."""
    grams = lm.orders[n - 1]
    vocab = np.array(lm.vocab, dtype=object)
    for s in range(0, len(grams), chunk):
        w = grams.words[s : s + chunk]
        text = vocab[w[:, 0]]
        for j in range(1, n):
            text = text + " " + vocab[w[:, j]]
        line = _fmt(grams.log10_prob[s : s + chunk]) + "\t" + text
        if n < lm.order:
            bo = grams.log10_backoff[s : s + chunk]
            tail = np.where(bo != 0.0, "\t" + _fmt(bo), "")
            line = line + tail
        yield "\n".join(line.tolist()) + "\n"


def write_arpa_file(lm: SphinxLM, path: str | os.PathLike[str]) -> None:
    """Write ``lm`` as it is in ARPA format, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\\data\\\n")
            for n, count in enumerate(lm.counts, start=1):
                f.write(f"ngram {n}={count}\n")
            for n in range(1, lm.order + 1):
                f.write(f"\n\\{n}-grams:\n")
                for text in _arpa_lines(lm, n):
                    f.write(text)
            f.write("\n\\end\\\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_arpa(
    lm: SphinxLM,
    path: str | os.PathLike[str],
    max_words: int | None = None,
    max_ngrams: Mapping[int, int] | None = None,
    word_pattern: str | None = DEFAULT_WORD_PATTERN,
    unk_log10prob: float | None = None,
    renormalize: bool = True,
) -> SphinxLM:
    """Prune ``lm`` (see ``prune``) and write it to ``path`` as ARPA; returns the
    pruned model. With the defaults only the word filter applies."""
    pruned = prune(lm, max_words, max_ngrams, word_pattern, unk_log10prob, renormalize)
    write_arpa_file(pruned, path)
    return pruned
