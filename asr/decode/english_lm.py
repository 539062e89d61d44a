"""The general-English word LM, with no download: derived from the 3-gram model
that the ``pocketsphinx`` wheel ships (``model/en-us/en-us.lm.bin``, 72.5k words,
2.05M bigrams, 1.67M trigrams; BSD-style licence), pruned for beam search and
written once as ARPA into the user's cache. ``--lm english`` names it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from asr.decode.lm_prune import write_arpa
from asr.decode.sphinx_lm import read_sphinx_lm

ENGLISH = "english"  # the --lm name of this model
SPHINX_LM = Path("en-us") / "en-us.lm.bin"


@dataclass(frozen=True)
class EnglishLMSize:
    """How much of the Sphinx model to keep. The default keeps the 50k most
    probable words and 1M bigrams and trigrams (52 MB of ARPA; KenLM loads it in
    about a second): 2.2% of LibriSpeech dev-clean's words fall outside it."""

    max_words: int = 50_000
    max_bigrams: int = 1_000_000
    max_trigrams: int = 1_000_000

    @property
    def file_name(self) -> str:
        return f"en-us-{self.max_words}w-{self.max_bigrams}b-{self.max_trigrams}t.arpa"


def cache_dir() -> Path:
    """Where asr keeps what it derives once: $ASR_CACHE_DIR, else
    $XDG_CACHE_HOME/asr, else ~/.cache/asr."""
    if os.environ.get("ASR_CACHE_DIR"):
        return Path(os.environ["ASR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "asr"


def sphinx_model_path() -> Path:
    """pocketsphinx's en-us LM file; a clear error when the package is missing."""
    try:
        import pocketsphinx  # lazily: only the first --lm english needs it
    except ImportError:
        raise ValueError(
            "--lm english is derived from the pocketsphinx package's en-us model: "
            "pip install pocketsphinx"
        ) from None
    path = Path(pocketsphinx.get_model_path()) / SPHINX_LM
    if not path.is_file():
        raise ValueError(f"{path}: pocketsphinx's en-us LM is missing")
    return path


def build_english_lm(
    out: Path, size: EnglishLMSize = EnglishLMSize(), source: Path | None = None
) -> Path:
    """Write the pruned ARPA model to ``out`` (atomically) and return it."""
    lm = read_sphinx_lm(source or sphinx_model_path())
    ngrams = {2: size.max_bigrams, 3: size.max_trigrams}
    write_arpa(lm, out, max_words=size.max_words, max_ngrams=ngrams)
    return out


def english_lm_path(size: EnglishLMSize = EnglishLMSize()) -> Path:
    """The cached ARPA file of the general-English LM, built on first use (about
    ten seconds, said on stderr)."""
    path = cache_dir() / "lm" / size.file_name
    if not path.is_file():
        print(
            f"building the general-English LM from pocketsphinx's en-us model, "
            f"once: {path}",
            file=sys.stderr,
        )
        start = time.perf_counter()
        build_english_lm(path, size)
        print(f"built in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return path


def resolve_lm(name: str | None) -> str | None:
    """An LM path as given, or ``english`` (when no such file exists) as the
    cached general-English model."""
    if name == ENGLISH and not Path(name).exists():
        return str(english_lm_path())
    return name
