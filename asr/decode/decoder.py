"""CTC log-probs -> hypotheses: greedy, or beam search with lexicon and n-gram LM.

decoder = build_decoder(DecodingOptions(decoder="beam", lm="lm.arpa"), tokenizer)
hyps = decoder.decode(log_probs, lens)   # B lists of n-best Hypothesis
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.data.lexicon import Lexicon, cmudict_path
from asr.data.text import PhoneTokenizer, Tokenizer, normalize_text
from asr.decode.beam import FlashlightCTC
from asr.decode.english_lm import ENGLISH, cache_dir, resolve_lm

SIL_TOKEN = "|"  # flashlight's word separator stands for our space character


@dataclass
class WordTiming:
    word: str
    start: float  # seconds
    end: float
    confidence: float  # 0..1


@dataclass
class Hypothesis:
    text: str
    tokens: list[int] = field(default_factory=list)
    score: float = 0.0  # greedy: best-path log-prob; beam: decoder score
    words: list[WordTiming] = field(default_factory=list)
    alternatives: list[Hypothesis] = field(default_factory=list)  # n-best, 2nd on


@dataclass(frozen=True)
class DecodingOptions:
    decoder: str = "greedy"  # greedy | beam
    beam_size: int = 50
    beam_threshold: float = 25.0
    # tokens a hypothesis may be extended by per frame, the most probable first
    # (0: all of them); a phone model: 10 of 41 decode twice as fast, same WER
    beam_size_token: int = 0
    lexicon: str | None = None  # "word c h a r s" lines; with an LM: the LM's words
    # ARPA or KenLM binary word n-gram model; "english": the general-English one
    # (asr.decode.english_lm)
    lm: str | None = None
    lm_weight: float = 0.5
    word_score: float = 0.0  # word insertion bonus
    nbest: int = 1
    word_timestamps: bool = False
    # clips (or long-file pieces) with less pause than this before or after the
    # speech get faint noise there before the model reads them (pad_edges); word
    # times stay those of the original audio. Models trained on recordings with
    # pauses around the speech drop words of clips cut tight to it (BENCHMARKS.md
    # "clip edges")
    pad_ms: float = 0.0
    # greedy decoding: at least this many seconds of blank frames between two
    # characters start a new word (0: never). A model trained on single
    # utterances emits no space across a pause between two of them ("stopstop")
    word_pause: float = 0.4

    def __post_init__(self) -> None:
        if self.beam_size_token < 0:
            raise ValueError(
                f"beam_size_token must be >= 0, not {self.beam_size_token}"
            )
        if self.pad_ms < 0:
            raise ValueError(f"pad_ms must be >= 0, not {self.pad_ms}")
        if self.word_pause < 0:
            raise ValueError(f"word_pause must be >= 0, not {self.word_pause}")

    @classmethod
    def for_model(cls, defaults: dict) -> DecodingOptions:
        """The defaults a model carries (checkpoint metadata "decoding"): only
        options about the audio it reads, never paths of another machine."""
        unknown = set(defaults) - set(MODEL_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown model decoding default(s) {sorted(unknown)}")
        if defaults.get("lm") not in (None, ENGLISH):
            raise ValueError(f"a model's default LM can only be {ENGLISH!r}")
        return cls(**defaults)

    @classmethod
    def from_file(cls, path: str | Path) -> DecodingOptions:
        """Options saved by ``save`` (e.g. by ``asr tune-decoder``)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown decoding option(s) {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


# DecodingOptions a checkpoint may set for itself: how it reads audio and, for a
# phone model (whose greedy output is phones), beam search with the named
# general-English LM
MODEL_DEFAULTS = (
    "pad_ms",
    "decoder",
    "lm",
    "lm_weight",
    "word_score",
    "beam_size",
    "beam_size_token",
)
# a phone model's defaults: the LM weight and word bonus that gave the lowest WER
# on 100 held-out LibriSpeech and 100 speechocean762 utterances (asr tune-decoder),
# and a beam of 400 over the 10 likeliest phones per frame: the widest of 200, 400
# and 800 that kept 50x real time with the bundled english model on one thread
# (about 70x; 0.6 points fewer errors than 200 on those utterances; beam 200 had
# made 2 fewer than 50 over all 41 phones; recipes/english/README.md)
PHONE_MODEL_DECODING = {
    "decoder": "beam",
    "lm": ENGLISH,
    "lm_weight": 1.5,
    "word_score": -2.0,
    "beam_size": 400,
    "beam_size_token": 10,
}


def model_decoding_defaults(model, tokenizer: Tokenizer) -> dict:
    """The decoding defaults ``model`` carries. A phone model's lie over
    PHONE_MODEL_DECODING, so one saved before a default was added still gets it."""
    stored = dict(model.decoding_defaults)
    if isinstance(tokenizer, PhoneTokenizer):
        return {**PHONE_MODEL_DECODING, **stored}
    return stored


class GreedyDecoder:
    """Best path: argmax per frame, merge repeats, drop blanks (id 0); with
    ``pause_frames``, a run of at least that many blanks between two characters
    is a word boundary."""

    def __init__(self, tokenizer: Tokenizer, pause_frames: int = 0):
        self.tokenizer, self.pause_frames = tokenizer, pause_frames

    def decode(self, log_probs, lens) -> list[list[Hypothesis]]:
        """log_probs: shape = (B, T, V); lens: (B,) -> B one-element lists."""
        hyps = greedy_decode(log_probs, lens, self.tokenizer, self.pause_frames)
        return [[h] for h in hyps]


def greedy_decode(
    log_probs, lens, tokenizer: Tokenizer, pause_frames: int = 0
) -> list[Hypothesis]:
    """log_probs: shape = (B, T, V) (numpy, or a CPU tensor); lens: (B,) valid
    frames per row. ``pause_frames`` > 0: a run of at least that many blank
    frames between two tokens other than the space puts a space between them
    (for a tokenizer that has one)."""
    log_probs = np.asarray(log_probs, dtype=np.float32)
    best_ids = log_probs.argmax(axis=-1)  # (B, T)
    best = np.take_along_axis(log_probs, best_ids[..., None], axis=-1)[..., 0]
    symbols = tokenizer.symbols
    space = symbols.index(" ") if pause_frames and " " in symbols else None
    hyps = []
    for row, scores, n in zip(best_ids.tolist(), best, np.asarray(lens).tolist()):
        tokens = _best_path_tokens(row[:n], space, pause_frames)
        hyps.append(
            Hypothesis(tokenizer.decode(tokens), tokens, float(scores[:n].sum()))
        )
    return hyps


def _best_path_tokens(ids: list[int], space: int | None, pause_frames: int):
    """One row's frame ids -> its tokens: repeats merged, blanks dropped; with a
    ``space`` id, a space where at least ``pause_frames`` blanks part two tokens
    that are not spaces."""
    tokens: list[int] = []
    blanks = 0
    for k, t in enumerate(ids):
        if t == 0:
            blanks += 1
            continue
        if k == 0 or t != ids[k - 1]:
            if (
                space is not None
                and blanks >= pause_frames
                and tokens
                and space not in (tokens[-1], t)
            ):
                tokens.append(space)
            tokens.append(t)
        blanks = 0
    return tokens


class BeamSearchDecoder:
    """flashlight-text's CTC beam search (asr.decode.beam), with optional lexicon
    and word LM."""

    def __init__(self, options: DecodingOptions, tokenizer: Tokenizer):
        self.tokenizer, self.options = tokenizer, options
        if " " not in tokenizer.symbols:
            raise ValueError("beam decoding needs a vocabulary with a space character")
        symbols = [SIL_TOKEN if s == " " else s for s in tokenizer.symbols]
        self.sil_id = symbols.index(SIL_TOKEN)
        self._tmp = tempfile.TemporaryDirectory(prefix="asr-decoder-")
        lexicon, lm = options.lexicon, resolve_lm(options.lm)
        self._lm_lexicon, self._first_spellings = None, None
        if lexicon is None and lm is not None:
            lexicon = lm_lexicon(lm, tokenizer, Path(self._tmp.name))
            self._lm_lexicon = lexicon  # write_lexicon's format: _word_tokens reads it
        self.lexicon_free = lexicon is None
        self.decoder = FlashlightCTC(
            symbols,
            symbols[0],
            SIL_TOKEN,
            lexicon,
            lm,
            options.nbest,
            beam_size=options.beam_size,
            beam_threshold=options.beam_threshold,
            beam_size_token=options.beam_size_token,
            lm_weight=options.lm_weight,
            word_score=options.word_score,
        )

    def decode(self, log_probs, lens) -> list[list[Hypothesis]]:
        """log_probs: shape = (B, T, V); lens: (B,) -> B lists of n-best hypotheses."""
        emissions = np.asarray(log_probs, dtype=np.float32)
        lens = np.asarray(lens)
        if not self.lexicon_free:
            emissions, lens = self._close_last_word(emissions, lens)
        results = self.decoder.decode(emissions, lens)
        return [[self._to_hypothesis(*h) for h in nbest] for nbest in results]

    def _close_last_word(self, emissions: np.ndarray, lens: np.ndarray):
        """Append one frame that is surely a word separator to each utterance.

        Lexicon spellings end with the separator, but the model (trained on
        utterances without a trailing space) does not emit one after the last
        word; without this the decoder drops it.
        """
        b, t, v = emissions.shape
        out = np.full((b, t + 1, v), -1e4, dtype=np.float32)
        out[:, :t] = emissions
        rows = np.arange(b)
        out[rows, lens] = -1e4
        out[rows, lens, self.sil_id] = 0.0
        return out, lens + 1

    def _to_hypothesis(self, tokens: list[int], words: list[str], score: float):
        if self.lexicon_free:
            return Hypothesis(self.tokenizer.decode(tokens), tokens, score)
        text = " ".join(w for w in words if w)
        return Hypothesis(text, self._word_tokens(text), score)

    def _word_tokens(self, text: str) -> list[int]:
        """The token ids of a decoded text, as ``tokenizer.encode`` gives them. A
        phone model's words are looked up in the lexicon the search spelt them
        with (its first line per word is the first pronunciation, as ``encode``
        takes it): reading the CMU dictionary for them would cost a second."""
        if not isinstance(self.tokenizer, PhoneTokenizer) or not self._lm_lexicon:
            return self.tokenizer.encode(text)
        if self._first_spellings is None:
            self._first_spellings = {}
            with open(self._lm_lexicon, encoding="utf-8") as f:
                for line in f:
                    word, _, spelling = line.partition("\t")
                    self._first_spellings.setdefault(word, spelling.split()[:-1])
        words = normalize_text(text).split()
        if not all(w in self._first_spellings for w in words):
            return self.tokenizer.encode(text)
        # encode itself, with just these words' first pronunciations to look up
        spelt = Lexicon({w: [self._first_spellings[w]] for w in words})
        return PhoneTokenizer(self.tokenizer.symbols, spelt).encode(text)


def build_decoder(
    options: DecodingOptions, tokenizer: Tokenizer, frame_seconds: float | None = None
):
    """The decoder ``options`` asks for (greedy, or beam with lexicon / LM).
    ``frame_seconds``: the model's frame step, which greedy decoding needs for
    ``options.word_pause`` (without it, no pause makes a word boundary)."""
    if options.decoder == "greedy":
        if options.lm or options.lexicon:
            raise ValueError("an LM or lexicon needs the beam decoder (--decoder beam)")
        pause = options.word_pause / frame_seconds if frame_seconds else 0.0
        return GreedyDecoder(tokenizer, math.ceil(pause - 1e-9) if pause else 0)
    if options.decoder == "beam":
        return BeamSearchDecoder(options, tokenizer)
    raise ValueError(f"unknown decoder {options.decoder!r} (greedy or beam)")


def lm_words(lm_path: str | Path) -> list[str]:
    """The words of an ARPA model's unigram section (markers excluded)."""
    words, in_unigrams = [], False
    with open(lm_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif in_unigrams and line.startswith("\\"):
                break
            elif in_unigrams and line:
                word = line.split()[1]
                if word not in ("<s>", "</s>", "<unk>"):
                    words.append(word)
    if not words:
        raise ValueError(
            f"{lm_path}: no unigrams found (is it an ARPA file? "
            "give a binary KenLM model together with --lexicon)"
        )
    return words


def lm_lexicon(lm: str | Path, tokenizer: Tokenizer, scratch: Path) -> str:
    """The lexicon of an LM's words spelled with ``tokenizer`` (write_lexicon),
    kept in the cache (asr.decode.english_lm.cache_dir) under a key of the
    vocabulary and the files it comes from, so that the next decoder with the same
    model and LM reads it instead of spelling 50k words again (a phone model:
    about 1.3 s of start-up, the CMU dictionary's reading included). Where the
    cache cannot be written, the lexicon goes to ``scratch``."""
    sources = [Path(lm)]
    if isinstance(tokenizer, PhoneTokenizer):
        sources.append(cmudict_path())
    key = json.dumps(
        [tokenizer.to_dict(), [(str(p.resolve()), *_stamp(p)) for p in sources]],
        sort_keys=True,
    )
    name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".txt"
    cached = cache_dir() / "lexicons" / name
    if cached.is_file():
        return str(cached)
    words = lm_words(lm)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        part = cached.with_suffix(f".{os.getpid()}.part")
        write_lexicon(words, tokenizer, part)
        os.replace(part, cached)  # whole or not at all, whoever writes it
        return str(cached)
    except OSError:
        return write_lexicon(words, tokenizer, scratch / "lexicon.txt")


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def write_lexicon(words: list[str], tokenizer: Tokenizer, path: Path) -> str:
    """Spell each word with the model's tokens, 'word w o r d |' per line (a
    phone model: one line per pronunciation, 'word R EH D |'); words the model
    cannot spell are left out."""
    with open(path, "w", encoding="utf-8") as f:
        for w in sorted(set(words)):
            for spelling in tokenizer.spellings(w):
                f.write(f"{w}\t{' '.join(spelling)} {SIL_TOKEN}\n")
    return str(path)
