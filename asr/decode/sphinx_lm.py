"""Read CMU Sphinx binary trie language models (``.lm.bin``, as pocketsphinx
ships its general-English model) into numpy arrays: word ids, log10 probabilities
and log10 back-off weights per order, with back-off scoring. lm_prune.py shrinks
such a model and writes it as ARPA for the beam decoder.

The format is sphinxbase / pocketsphinx ``ngram_model_trie``'s (the file starts
with ``Trie Language Model``): little-endian; unigrams as float32 triples
(prob, back-off, next); higher orders bit-packed (word id, quantised back-off and
probability indexes into 65536-entry tables, next pointer) in a reversed (suffix)
trie, as KenLM stores it; every value a log in base 1.0001 (pocketsphinx's default,
not recorded in the file: with it, the en-us unigrams sum to 0.9999988).
Special tokens: ``<s>`` and ``</s>`` as they are; ``<UNK>``/``<unk>`` if present.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TRIE_HEADER = b"Trie Language Model"
LOG10_OF_BASE = math.log10(1.0001)  # values are stored in units of log base 1.0001
QUANT_BITS = 16  # width of a quantised probability / back-off index
QUANT_BINS = 1 << QUANT_BITS
MAX_ORDER = 9  # sanity limit for the order byte (Sphinx supports up to 6)
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
UNK_ALIASES = ("<unk>", "<UNK>")
KENLM_MISSING_UNK = -100.0  # KenLM's own log10 P(<unk>) when an ARPA lacks <unk>

_UNIGRAM_DTYPE = np.dtype([("prob", "<f4"), ("backoff", "<f4"), ("next", "<u4")])


@dataclass
class NGrams:
    """All n-grams of one order; row i of ``words`` is one n-gram, oldest word first.

    ``log10_backoff`` is zero for the highest order (and for n-grams that are not
    the context of any longer n-gram).
    """

    words: np.ndarray  # (count, n) int32 word ids
    log10_prob: np.ndarray  # (count,) float64
    log10_backoff: np.ndarray  # (count,) float64

    def __len__(self) -> int:
        return len(self.log10_prob)


@dataclass
class SphinxLM:
    """A back-off n-gram model held as numpy arrays (orders[0] are the unigrams)."""

    vocab: list[str]
    orders: list[NGrams]
    header_counts: tuple[int, ...] = ()
    source: str = ""
    _index: dict[int, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False
    )
    _word_ids: dict[str, int] | None = field(default=None, repr=False)

    @property
    def order(self) -> int:
        return len(self.orders)

    @property
    def counts(self) -> list[int]:
        """Number of n-grams stored per order (unigrams first)."""
        return [len(o) for o in self.orders]

    def word_id(self, word: str) -> int:
        """The id of ``word``, or -1 if it is not in the vocabulary."""
        if self._word_ids is None:
            self._word_ids = {w: i for i, w in enumerate(self.vocab)}
        return self._word_ids.get(word, -1)

    def find(self, ngrams: np.ndarray) -> np.ndarray:
        """Row index of each n-gram (rows of word ids) in its order, -1 if absent."""
        ngrams = np.asarray(ngrams, dtype=np.int64)
        n = ngrams.shape[1]
        if n > self.order:
            return np.full(len(ngrams), -1, dtype=np.int64)
        idx = ngrams[:, -1].copy()
        idx[(idx < 0) | (idx >= len(self.vocab))] = -1
        for k in range(2, n + 1):
            idx = self._find_level(k, idx, ngrams[:, n - k])
        return idx

    def _find_level(self, k: int, suffix: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Index of the k-gram (first, *suffix) given the index of its suffix."""
        keys, perm = self._level_index(k)
        out = np.full(len(suffix), -1, dtype=np.int64)
        ok = (suffix >= 0) & (first >= 0)
        if not len(keys) or not ok.any():
            return out
        query = suffix[ok] * len(self.vocab) + first[ok]
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        out[ok] = np.where(keys[pos] == query, perm[pos], -1)
        return out

    def _level_index(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted keys (suffix index * V + first word) of order k and their rows."""
        if k not in self._index:
            words = self.orders[k - 1].words.astype(np.int64)
            suffix = self.find(words[:, 1:])
            if (suffix < 0).any():
                raise ValueError(f"{self.source}: some {k}-grams lack their suffix")
            keys = suffix * len(self.vocab) + words[:, 0]
            perm = np.argsort(keys, kind="stable")
            self._index[k] = (keys[perm], perm)
        return self._index[k]

    def log10_cond_prob(self, ngrams: np.ndarray) -> np.ndarray:
        """Back-off log10 P(last word | the words before it) for rows of word ids."""
        ngrams = np.asarray(ngrams, dtype=np.int64)
        n = ngrams.shape[1]
        if n > self.order:
            return self.log10_cond_prob(ngrams[:, n - self.order :])
        if n == 1:
            return self.orders[0].log10_prob[ngrams[:, 0]]
        out = np.empty(len(ngrams))
        idx = self.find(ngrams)
        hit = idx >= 0
        out[hit] = self.orders[n - 1].log10_prob[idx[hit]]
        miss = ~hit
        ctx = self.find(ngrams[miss, :-1])
        bo = np.where(ctx >= 0, self.orders[n - 2].log10_backoff[ctx], 0.0)
        out[miss] = bo + self.log10_cond_prob(ngrams[miss, 1:])
        return out

    def score(self, words: Sequence[str]) -> float:
        """log10 P(words[-1] | words[:-1]); unknown words map to <unk> if present."""
        ids = self._ids(words)
        return float(self.log10_cond_prob(np.array([ids]))[0])

    def sentence_log10prob(self, sentence: str | Sequence[str]) -> float:
        """log10 P(<s> sentence </s>), the sum of the per-word scores."""
        words = sentence.split() if isinstance(sentence, str) else list(sentence)
        ids = self._ids([BOS, *words, EOS])
        rows = [ids[max(0, i - self.order + 1) : i + 1] for i in range(1, len(ids))]
        return float(sum(self.log10_cond_prob(np.array([r]))[0] for r in rows))

    def _ids(self, words: Sequence[str]) -> list[int]:
        """Word ids, <unk> for unknown words; KeyError if there is no <unk>."""
        ids = [self.word_id(w) for w in words]
        unk = self.word_id(UNK)
        if any(i < 0 for i in ids) and unk < 0:
            missing = [w for w, i in zip(words, ids) if i < 0]
            raise KeyError(f"not in the vocabulary (and no {UNK}): {missing}")
        return [unk if i < 0 else i for i in ids]


# ---------------------------------------------------------------------------
# Reading the binary trie format


def _required_bits(max_value: int) -> int:
    """Bits needed to store 0..max_value (Sphinx's bitarr_required_bits)."""
    return int(max_value).bit_length()


class _Reader:
    """Sequential little-endian reader over the file bytes with size checks."""

    def __init__(self, data: bytes, path: str) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"{self.path}: truncated or corrupt Sphinx trie LM "
                f"(needs {n} bytes for {what} at offset {self.pos}, "
                f"file has {len(self.data)})"
            )
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def array(self, dtype: np.dtype | str, count: int, what: str) -> np.ndarray:
        dtype = np.dtype(dtype)
        return np.frombuffer(self.take(dtype.itemsize * count, what), dtype=dtype)

    def int32(self, what: str) -> int:
        return int(self.array("<i4", 1, what)[0])


def _read_header(r: _Reader) -> tuple[int, list[int]]:
    """Magic string, order byte and the per-order counts."""
    magic = r.data[: len(TRIE_HEADER)]
    if magic != TRIE_HEADER:
        raise ValueError(
            f"{r.path}: not a Sphinx trie language model "
            f"(expected header {TRIE_HEADER.decode()!r}, got {magic!r})"
        )
    r.take(len(TRIE_HEADER), "header")
    order = r.take(1, "order")[0]
    if not 1 <= order <= MAX_ORDER:
        raise ValueError(f"{r.path}: implausible n-gram order {order}")
    counts = [int(c) for c in r.array("<u4", order, "n-gram counts")]
    if counts[0] == 0 or any(c >= 1 << 31 for c in counts):
        raise ValueError(f"{r.path}: implausible n-gram counts {counts}")
    return order, counts


def _log10(values: np.ndarray) -> np.ndarray:
    """Sphinx log-base-1.0001 values (float32) as float64 log10 values."""
    return values.astype(np.float64) * LOG10_OF_BASE


def _read_quant_tables(r: _Reader, order: int) -> list[tuple[np.ndarray, ...]]:
    """Per order >= 2: (prob table,) or (prob table, back-off table), in log10."""
    if order < 2:
        return []
    r.int32("quantisation type")  # historical field, always 1
    tables: list[tuple[np.ndarray, ...]] = []
    for _ in range(2, order):
        prob = r.array("<f4", QUANT_BINS, "probability bins")
        bo = r.array("<f4", QUANT_BINS, "back-off bins")
        tables.append((_log10(prob), _log10(bo)))
    longest = r.array("<f4", QUANT_BINS, "probability bins")
    tables.append((_log10(longest),))
    return tables


def _read_bits(mem: np.ndarray, bit_offsets: np.ndarray, width: int) -> np.ndarray:
    """Little-endian bit fields of ``width`` (<= 56) bits starting at bit_offsets.

    ``mem`` must have at least 8 readable bytes after the last field's first byte.
    """
    byte = bit_offsets >> 3
    out = np.empty(len(bit_offsets), dtype=np.uint64)
    for r in range(8):  # eight unaligned uint64 views, one per byte phase
        sel = (byte & 7) == r
        view = np.frombuffer(mem, dtype="<u8", offset=r, count=(len(mem) - r) // 8)
        out[sel] = view[byte[sel] >> 3]
    shift = (bit_offsets & 7).astype(np.uint64)
    mask = np.uint64((1 << width) - 1)
    return ((out >> shift) & mask).astype(np.int64)


def _level_size(entries: int, bits: int) -> int:
    """Bytes Sphinx allocates for a packed array (one spare entry + 8 pad bytes)."""
    return ((1 + entries) * bits + 7) // 8 + 8


@dataclass
class _Level:
    """One decoded trie level (order >= 2), in trie order."""

    word: np.ndarray  # word id stored in the node (the oldest word of the n-gram)
    prob: np.ndarray  # log10 probability
    backoff: np.ndarray  # log10 back-off (zeros for the highest order)
    next: np.ndarray | None  # child ranges: children of i are next[i]..next[i+1]


def _read_level(
    r: _Reader, counts: list[int], k: int, n_used: int, tables: tuple[np.ndarray, ...]
) -> _Level:
    """Decode the packed entries of order k (2 <= k <= order) of which n_used are real.

    Middle entry: word | back-off index | prob index | next pointer (LSB first);
    the highest order has only word | prob index.
    """
    word_bits = _required_bits(counts[0])
    middle = k < len(counts)
    next_bits = _required_bits(counts[k]) if middle else 0
    bits = word_bits + (2 * QUANT_BITS if middle else QUANT_BITS) + next_bits
    raw = r.take(_level_size(counts[k - 1], bits), f"{k}-gram trie level")
    mem = np.frombuffer(raw + bytes(8), dtype=np.uint8)
    start = np.arange(n_used + (1 if middle else 0), dtype=np.int64) * bits
    word = _read_bits(mem, start[:n_used], word_bits)
    if not middle:
        prob = tables[0][_read_bits(mem, start + word_bits, QUANT_BITS)]
        return _Level(word, prob, np.zeros(n_used), None)
    q = start[:n_used] + word_bits
    backoff = tables[1][_read_bits(mem, q, QUANT_BITS)]
    prob = tables[0][_read_bits(mem, q + QUANT_BITS, QUANT_BITS)]
    nxt = _read_bits(mem, start + word_bits + 2 * QUANT_BITS, next_bits)
    return _Level(word, prob, backoff, nxt)


def _check_ranges(nxt: np.ndarray, limit: int, what: str, path: str) -> None:
    """Child pointers must start at 0, never decrease and stay within limit."""
    if len(nxt) and (nxt[0] != 0 or nxt[-1] > limit or (np.diff(nxt) < 0).any()):
        raise ValueError(f"{path}: corrupt {what} child pointers")


def _read_vocab(r: _Reader, n_words: int) -> list[str]:
    """The NUL-terminated word strings that end the file."""
    size = r.int32("word string size")
    blob = r.take(size, "word strings")
    parts = blob.split(b"\0")
    if len(parts) != n_words + 1 or parts[-1]:
        raise ValueError(
            f"{r.path}: word list has {len(parts) - 1} words, header says {n_words}"
        )
    try:
        return [p.decode("utf-8") for p in parts[:-1]]
    except UnicodeDecodeError:
        return [p.decode("latin-1") for p in parts[:-1]]


def read_sphinx_lm(path: str | os.PathLike[str]) -> SphinxLM:
    """Read a Sphinx binary trie LM (``.lm.bin``); ValueError if it is not one."""
    path = str(path)
    r = _Reader(Path(path).read_bytes(), path)
    order, counts = _read_header(r)
    tables = _read_quant_tables(r, order)
    unigrams = r.array(_UNIGRAM_DTYPE, counts[0] + 1, "unigrams")
    parent_next = unigrams["next"].astype(np.int64)
    ids = np.arange(counts[0], dtype=np.int32)[:, None]
    orders = [
        NGrams(
            ids,
            np.minimum(_log10(unigrams["prob"][:-1]), 0.0),
            _log10(unigrams["backoff"][:-1]),
        )
    ]
    for k in range(2, order + 1):
        _check_ranges(parent_next, counts[k - 1], f"{k - 1}-gram", path)
        n_used = int(parent_next[-1])
        level = _read_level(r, counts, k, n_used, tables[k - 2])
        if (level.word >= counts[0]).any():
            raise ValueError(f"{path}: {k}-gram word id out of range")
        parent = np.repeat(np.arange(len(parent_next) - 1), np.diff(parent_next))
        words = np.column_stack([level.word, orders[-1].words[parent]])
        orders.append(NGrams(words.astype(np.int32), level.prob, level.backoff))
        parent_next = level.next if level.next is not None else parent_next
    vocab = _read_vocab(r, counts[0])
    if r.pos != len(r.data):
        raise ValueError(f"{path}: {len(r.data) - r.pos} unexpected trailing bytes")
    return SphinxLM(vocab, orders, tuple(counts), path)


# ---------------------------------------------------------------------------
# Pruning
