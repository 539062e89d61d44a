"""Voice commands: a YAML grammar of phrases (with slots) mapped to actions.

Recognition is restricted to the grammar by scoring every allowed phrase against
the utterance's CTC output (its CTC log-likelihood: all alignments summed) next to
two garbage hypotheses, the unconstrained greedy transcript and silence. The
phrase's confidence is its share of the probability mass; below the grammar's
threshold nothing fires, so noise and out-of-grammar speech are rejected.
In a stream (CommandSpotter) a phrase fires at the end of its utterance, or
earlier, at a short pause, when its match is already sure.

    commands:
      - phrase: "yes"
        action: {print: "confirmed"}
      - phrase: "enter <digit>"
        action: {run: ["echo", "digit {digit}"]}     # no shell unless shell: true
      - phrase: "stop"
        action: {emit: {event: stop}}                # a JSON line on stdout
    threshold: 0.5
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from asr.data.text import PhoneTokenizer, Tokenizer, normalize_text
from asr.decode.decoder import greedy_decode

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = [
    "",
    "",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
]


def number_words(n: int) -> str:
    """0..999 in words, as AN4 speakers say them: 'two hundred and five'."""
    if n < 20:
        return _UNITS[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _UNITS[n % 10])
    rest = n % 100
    return f"{_UNITS[n // 100]} hundred" + (
        f" and {number_words(rest)}" if rest else ""
    )


DIGIT_WORDS = _UNITS[:10]

SLOTS: dict[str, list[tuple[str, object]]] = {
    "digit": [(w, k) for k, w in enumerate(DIGIT_WORDS)] + [("oh", 0)],
    "letter": [(c, c) for c in "abcdefghijklmnopqrstuvwxyz"],
    "number": [(number_words(n), n) for n in range(100)],
}


class GrammarError(ValueError):
    """A grammar file that cannot be used; the message names the file."""


@dataclass
class Action:
    kind: str  # print | run | emit
    value: object
    shell: bool = False

    def execute(self, slots: dict, json_mode: bool) -> None:
        """Run the action with slot values filled into its strings."""
        if self.kind == "print":
            print(
                _fill(self.value, slots),
                file=sys.stderr if json_mode else sys.stdout,
                flush=True,
            )
        elif self.kind == "emit":
            print(json.dumps(_fill(self.value, slots)), flush=True)
        elif self.shell:  # asked for explicitly in the grammar
            subprocess.run(_fill(self.value, slots), shell=True, check=False)
        else:
            subprocess.run([str(a) for a in _fill(self.value, slots)], check=False)


@dataclass
class Command:
    phrase: str  # as written in the grammar
    action: Action
    expansions: list[tuple[str, dict]] = field(default_factory=list)


@dataclass
class Match:
    command: Command
    text: str
    slots: dict
    confidence: float


@dataclass
class Grammar:
    commands: list[Command]
    threshold: float = 0.5

    @classmethod
    def load(cls, path: str | Path) -> Grammar:
        path = Path(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise GrammarError(f"{path}: cannot read the grammar ({err})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("commands"), list):
            raise GrammarError(f"{path}: a grammar needs a 'commands:' list")
        commands = [_command(entry, path) for entry in doc["commands"]]
        return cls(commands, float(doc.get("threshold", 0.5)))

    def words(self) -> list[str]:
        """Every word the phrases can be said with (slots expanded), each once,
        in grammar order."""
        said = (text for c in self.commands for text, _ in c.expansions)
        return list(dict.fromkeys(w for text in said for w in text.split()))


def _command(entry, path: Path) -> Command:
    if not isinstance(entry, dict) or "phrase" not in entry or "action" not in entry:
        raise GrammarError(f"{path}: each command needs 'phrase' and 'action': {entry}")
    action = entry["action"]
    kinds = {"print", "run", "emit"} & set(action if isinstance(action, dict) else {})
    if len(kinds) != 1:
        raise GrammarError(
            f"{path}: {entry['phrase']!r}: the action must be one of print, run or emit"
        )
    kind = kinds.pop()
    value, shell = action[kind], bool(action.get("shell", False))
    if kind == "run" and not shell and not isinstance(value, list):
        raise GrammarError(
            f"{path}: {entry['phrase']!r}: 'run' takes an argument "
            "list (or a string with 'shell: true')"
        )
    phrase = str(entry["phrase"])
    return Command(phrase, Action(kind, value, shell), expand(phrase, path))


def expand(phrase: str, path: Path | str = "<grammar>") -> list[tuple[str, dict]]:
    """All word sequences a phrase allows, with the slot values of each."""
    parts = []
    for token in phrase.split():
        if token.startswith("<") and token.endswith(">"):
            name = token[1:-1]
            if name not in SLOTS:
                raise GrammarError(
                    f"{path}: unknown slot {token} in {phrase!r} "
                    f"(known: {', '.join(f'<{s}>' for s in SLOTS)})"
                )
            parts.append([(w, {name: v}) for w, v in SLOTS[name]])
        else:
            parts.append([(normalize_text(token), {})])
    out = []
    for combo in itertools.product(*parts):
        slots: dict = {}
        for _, s in combo:
            slots.update(s)
        out.append((" ".join(w for w, _ in combo if w), slots))
    return out


class CommandMatcher:
    """Scores the grammar's phrases against one utterance's log-probs."""

    def __init__(self, grammar: Grammar, tokenizer: Tokenizer):
        self.grammar, self.tokenizer = grammar, tokenizer
        self.candidates = [
            (c, text, slots) for c in grammar.commands for text, slots in c.expansions
        ]
        phones = isinstance(tokenizer, PhoneTokenizer)
        known = set(tokenizer.symbols)
        for c, text, _ in self.candidates:
            if phones:
                missing = tokenizer.unknown_words(text)
                where = f"no pronunciation of {missing} in the model's lexicon"
            else:
                missing = sorted(set(text) - known)
                where = f"the model has no {missing} in its vocabulary"
            if missing:
                raise GrammarError(f"{c.phrase!r}: {where}")
        # a phrase's targets: a phone model spells it with first pronunciations
        self.targets = [tokenizer.encode(text) for _, text, _ in self.candidates]

    @torch.inference_mode()
    def match(self, log_probs: torch.Tensor) -> Match | None:
        """log_probs: shape = (T, V) -> the best phrase, if confident enough."""
        free = greedy_decode(
            log_probs[None], torch.tensor([len(log_probs)]), self.tokenizer
        )[0]
        # the garbage hypotheses: what the model heard freely, and nothing
        heard = (
            free.tokens
            if isinstance(self.tokenizer, PhoneTokenizer)
            else self.tokenizer.encode(free.text)
        )
        garbage = [g for g in ([], heard) if g not in self.targets]
        garbage = [g for k, g in enumerate(garbage) if g not in garbage[:k]]
        scores = ctc_log_likelihoods(log_probs, [*self.targets, *garbage])
        posteriors = torch.softmax(scores, dim=0)
        best = int(posteriors[: len(self.targets)].argmax())
        confidence = float(posteriors[best])
        if confidence < self.grammar.threshold:
            return None
        command, text, slots = self.candidates[best]
        return Match(command, text, slots, confidence)


EARLY_CONFIDENCE = 0.95  # a match this sure fires at a pause, before the end


class CommandSpotter:
    """When a streamed utterance fires its command: at a "pause" event (the
    recognizer's ``pause_ms``) if the match is at least ``early_confidence``
    (None: never early), else at its "final" event with the grammar's threshold;
    at most once per utterance."""

    def __init__(
        self, matcher: CommandMatcher, early_confidence: float | None = EARLY_CONFIDENCE
    ):
        self.matcher, self.early_confidence = matcher, early_confidence
        self.fired_start: float | None = None  # start of the utterance that fired

    def spot(self, event) -> Match | None:
        """event: a recognizer Event -> the match to fire now, if any."""
        if event.type not in ("pause", "final") or event.start == self.fired_start:
            return None
        if event.type == "pause" and self.early_confidence is None:
            return None
        m = self.matcher.match(event.log_probs)
        if m is None or event.type == "pause" and m.confidence < self.early_confidence:
            return None
        self.fired_start = event.start
        return m


def ctc_log_likelihoods(
    log_probs: torch.Tensor, token_ids: list[list[int]]
) -> torch.Tensor:
    """log p(tokens | audio) under CTC for each token sequence. log_probs:
    (T, V) -> (N,)."""
    targets = [torch.tensor(ids, dtype=torch.long) for ids in token_ids]
    lens = torch.tensor([len(t) for t in targets])
    padded = torch.nn.utils.rnn.pad_sequence(
        [t if len(t) else torch.zeros(1, dtype=torch.long) for t in targets],
        batch_first=True,
    )
    n, frames = len(token_ids), log_probs.shape[0]
    lp = log_probs.float()[:, None].expand(frames, n, -1)
    loss = torch.nn.functional.ctc_loss(
        lp,
        padded,
        torch.full((n,), frames),
        lens,
        reduction="none",
        zero_infinity=False,
    )
    return -loss


def _fill(value, slots: dict):
    """Format {slot} placeholders in strings inside lists and dicts."""
    if isinstance(value, str):
        return value.format(**slots) if slots else value
    if isinstance(value, list):
        return [_fill(v, slots) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, slots) for k, v in value.items()}
    return value
