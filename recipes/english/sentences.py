"""Sentences of general English for synthetic speech, sampled from the
general-English 3-gram LM (`--lm english`: pocketsphinx's en-us model, pruned and
cached as ARPA by `asr lm english`), one per line.

    python recipes/english/sentences.py --count 3000 --out data/english/sentences.txt

Each sentence starts at <s> and draws word after word until </s>: from the explicit
trigrams of its last two words with the probability mass they hold, else from the
explicit bigrams of its last word with theirs, else from the unigrams (the back-off
model's own choice, without renormalising away the words that the longer context
lists). Sentences of --min-words to --max-words words, spelled with letters and
apostrophes only, are kept, each once; the draw is reproducible (--seed).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

from asr.decode.english_lm import english_lm_path

SPELLED = re.compile(r"^[a-z']+$")


class NGramSampler:
    """The n-grams of an ARPA file (up to trigrams) arranged for sampling."""

    def __init__(self, path: str | Path):
        self.ngrams: dict[int, dict[tuple, tuple[list[str], list[float]]]] = {
            1: {},
            2: {},
            3: {},
        }
        order = 0
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                if line.startswith("\\") and line.endswith("-grams:"):
                    order = int(line[1])
                    continue
                if line.startswith("\\") or order not in (1, 2, 3):
                    continue
                fields = line.split()
                if len(fields) < order + 1:
                    continue
                words = fields[1 : 1 + order]
                ctx, word = tuple(words[:-1]), words[-1]
                entry = self.ngrams[order].setdefault(ctx, ([], []))
                entry[0].append(word)
                entry[1].append(10 ** float(fields[0]))
        self._cumulative: dict[tuple, tuple[list[str], np.ndarray]] = {}

    def _draw(self, order: int, ctx: tuple, rng: np.random.Generator) -> str | None:
        """A word from the explicit n-grams of ``ctx`` with the probability mass
        they hold; None (back off) otherwise."""
        key = (order, *ctx)
        if key not in self._cumulative:
            entry = self.ngrams[order].get(ctx)
            if entry is None:
                self._cumulative[key] = ([], np.zeros(0))
            else:
                self._cumulative[key] = (entry[0], np.cumsum(entry[1]))
        words, cum = self._cumulative[key]
        if not words:
            return None
        u = rng.random()
        if order == 1:
            u *= cum[-1]  # the unigrams: the whole distribution
        elif u >= cum[-1]:
            return None  # back off, with the mass the explicit n-grams leave
        k = int(np.searchsorted(cum, u, "right"))
        return words[min(k, len(words) - 1)]

    def sentence(self, rng: np.random.Generator, max_words: int = 40) -> list[str]:
        """One sentence's words, <s> and </s> left out."""
        history = ["<s>"]
        while len(history) <= max_words:
            word = None
            if len(history) >= 2:
                word = self._draw(3, tuple(history[-2:]), rng)
            if word is None:
                word = self._draw(2, (history[-1],), rng)
            if word is None:
                word = self._draw(1, (), rng)
            if word == "</s>":
                break
            if word not in ("<s>", "<unk>"):
                history.append(word)
        return history[1:]


def sample_sentences(
    sampler: NGramSampler, count: int, min_words: int, max_words: int, seed: int
) -> list[str]:
    """``count`` distinct sentences of ``min_words``..``max_words`` spelled words."""
    rng = np.random.default_rng(seed)
    seen: dict[str, None] = {}
    for _ in range(count * 50):
        words = sampler.sentence(rng, max_words + 1)
        if min_words <= len(words) <= max_words and all(map(SPELLED.match, words)):
            seen.setdefault(" ".join(words))
            if len(seen) == count:
                break
    return list(seen)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=3000)
    ap.add_argument("--min-words", type=int, default=5)
    ap.add_argument("--max-words", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lm", type=Path, default=None, help="ARPA (default: english)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    sampler = NGramSampler(args.lm or english_lm_path())
    sentences = sample_sentences(
        sampler, args.count, args.min_words, args.max_words, args.seed
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(s + "\n" for s in sentences))
    print(f"{args.out}: {len(sentences)} sentences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
