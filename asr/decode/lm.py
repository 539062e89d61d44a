"""Word n-gram language models: modified Kneser-Ney estimation, written as ARPA.

The model is interpolated modified Kneser-Ney (Chen & Goodman, 1998) with the
count adjustments KenLM uses: the highest order keeps raw counts, lower orders use
continuation counts (how many different words precede the n-gram), except n-grams
that start with <s>, which keep raw counts. In ARPA form, each stored probability is
the interpolated one and each back-off weight is the interpolation weight gamma(h),
so back-off queries give exactly the interpolated distribution.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.text import normalize_text

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # when a tiny corpus lacks count-of-counts

Gram = tuple[str, ...]


@dataclass
class NGramModel:
    """log10 probabilities and back-off weights per order (1-based)."""

    order: int
    probs: list[dict[Gram, float]] = field(default_factory=list)
    backoffs: list[dict[Gram, float]] = field(default_factory=list)

    def log10_prob(self, word: str, history: Gram) -> float:
        """Back-off query: log10 p(word | history), history in sentence order."""
        history = history[len(history) - self.order + 1 :] if self.order > 1 else ()
        total = 0.0
        while True:
            gram = (*history, word)
            if gram in self.probs[len(gram) - 1]:
                return total + self.probs[len(gram) - 1][gram]
            if not history:
                return total + self.probs[0].get((UNK,), -99.0)
            total += self.backoffs[len(history) - 1].get(history, 0.0)
            history = history[1:]

    @property
    def vocab(self) -> list[str]:
        return [g[0] for g in self.probs[0]]


def estimate(
    sentences: Iterable[str], order: int = 3, vocab: Iterable[str] = ()
) -> NGramModel:
    """Estimate an interpolated modified Kneser-Ney model of ``order`` from text.

    ``vocab``: more words for the vocabulary (e.g. a pronunciation dictionary's)
    that the text may lack. Like <unk>, each unseen one gets the unigram
    interpolation mass gamma * uniform (SRILM's ``ngram-count -vocab``), so a
    lexicon decoder built from the LM's words can still output it."""
    if order < 1:
        raise ValueError("the n-gram order must be at least 1")
    counts = _raw_counts(sentences, order)
    if not counts[0]:
        raise ValueError("cannot estimate a language model from no words")
    adjusted = _adjust_counts(counts)
    model = NGramModel(order, [{} for _ in range(order)], [{} for _ in range(order)])
    seen = {g[0] for g in counts[0]}
    unseen = {w for w in vocab if w not in (BOS, EOS, UNK)} - seen
    lower: dict[Gram, float] = {}
    for n in range(1, order + 1):
        probs, gammas = _interpolate(
            adjusted[n - 1], _discounts(adjusted[n - 1]), lower, n, seen, unseen
        )
        for gram, p in probs.items():
            model.probs[n - 1][gram] = math.log10(p) if p > 0 else -99.0
        if n > 1:
            for h, g in gammas.items():
                model.backoffs[n - 2][h] = math.log10(g) if g > 0 else -99.0
        lower = probs
    model.probs[0][(BOS,)] = -99.0
    return model


def _raw_counts(sentences: Iterable[str], order: int) -> list[Counter]:
    counts = [Counter() for _ in range(order)]
    for sentence in sentences:
        words = [BOS, *sentence.split(), EOS]
        if len(words) == 2:
            continue
        for n in range(1, order + 1):
            for i in range(len(words) - n + 1):
                gram = tuple(words[i : i + n])
                if gram != (BOS,):
                    counts[n - 1][gram] += 1
    return counts


def _adjust_counts(counts: list[Counter]) -> list[Counter]:
    """Continuation counts for lower orders (raw ones for n-grams starting <s>)."""
    adjusted = [Counter() for _ in counts]
    adjusted[-1] = counts[-1].copy()
    for n in range(len(counts) - 1, 0, -1):  # n-grams of length n, from n+1-grams
        for gram in counts[n]:
            adjusted[n - 1][gram[1:]] += 1
        for gram, c in counts[n - 1].items():
            if gram[0] == BOS:
                adjusted[n - 1][gram] = c
    return adjusted


def _discounts(adj: Counter) -> tuple[float, float, float]:
    """D1, D2, D3+ from the count-of-counts n1..n4 (Chen & Goodman)."""
    n = Counter(min(c, 4) for c in adj.values())
    try:
        y = n[1] / (n[1] + 2 * n[2])
        d = (1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3])
    except ZeroDivisionError:
        return FALLBACK_DISCOUNTS
    if not all(0 < dk < k for k, dk in enumerate(d, 1)):
        return FALLBACK_DISCOUNTS
    return d


def _interpolate(
    adj: Counter,
    d: tuple[float, float, float],
    lower: dict[Gram, float],
    n: int,
    seen: set[str],
    unseen: set[str],
):
    """Interpolated p(w | h) for seen n-grams and gamma(h) for every history h;
    unigrams also for <unk> and the ``unseen`` vocabulary words."""
    totals: dict[Gram, float] = defaultdict(float)
    discount_mass: dict[Gram, float] = defaultdict(float)
    for gram, c in adj.items():
        totals[gram[:-1]] += c
        discount_mass[gram[:-1]] += d[min(c, 3) - 1]
    gammas = {h: discount_mass[h] / totals[h] for h in totals}
    uniform = 1.0 / len(seen | unseen | {UNK})  # <s> is never predicted
    probs: dict[Gram, float] = {}
    for gram, c in adj.items():
        h = gram[:-1]
        back = lower[gram[1:]] if n > 1 else uniform
        probs[gram] = (c - d[min(c, 3) - 1]) / totals[h] + gammas[h] * back
    if n == 1:
        for w in (UNK, *sorted(unseen)):
            probs[(w,)] = probs.get((w,), 0.0) + gammas[()] * uniform
    return probs, gammas


def read_vocab(path: str | Path) -> list[str]:
    """Words from a word list, a lexicon ("word w o r d |") or a pronunciation
    dictionary (CMUdict/Sphinx: "WORD(2)  W ER D"): the first field of each line,
    without a "(N)" variant mark, normalised like transcripts."""
    words: dict[str, None] = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if not fields or fields[0].startswith((";;;", "#")):
            continue
        word = normalize_text(re.sub(r"\(\d+\)$", "", fields[0]))
        if word and " " not in word:
            words[word] = None
    return list(words)


def write_arpa(model: NGramModel, path: str | Path) -> None:
    """Write the model in ARPA text format (what KenLM and flashlight read)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        for n in range(1, model.order + 1):
            f.write(f"ngram {n}={len(model.probs[n - 1])}\n")
        for n in range(1, model.order + 1):
            f.write(f"\n\\{n}-grams:\n")
            for gram, lp in sorted(model.probs[n - 1].items()):
                line = f"{lp:.6f}\t{' '.join(gram)}"
                if n < model.order and gram in model.backoffs[n - 1]:
                    line += f"\t{model.backoffs[n - 1][gram]:.6f}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")


def read_arpa(path: str | Path) -> NGramModel:
    """Read an ARPA file (as written by ``write_arpa`` or KenLM)."""
    probs: list[dict[Gram, float]] = []
    backoffs: list[dict[Gram, float]] = []
    n = 0
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.endswith("-grams:"):
            n = int(line[1 : line.index("-")])
            probs.append({})
            backoffs.append({})
        elif n and line and not line.startswith("\\"):
            parts = line.split()
            gram = tuple(parts[1 : 1 + n])
            probs[n - 1][gram] = float(parts[0])
            if len(parts) > n + 1:
                backoffs[n - 1][gram] = float(parts[n + 1])
    return NGramModel(len(probs), probs, backoffs)
