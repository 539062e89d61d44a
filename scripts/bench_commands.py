"""Voice commands in a stream: end of speech -> command fired, for several settings.

    python scripts/bench_commands.py [--model M] [--grammar G] [--setting SPEC ...]

Every clip is streamed in 30 ms blocks, between quiet-room noise (0.5 s before,
1.5 s after), through what `asr commands` runs (webrtcvad endpointer, chunked
LC-BLSTM, asr.stream.grammar.CommandSpotter), once per setting, the settings side
by side clip by clip so that the machine's load hits them alike:

- command clips (default: data/commands/synth_dev, an4_dev_words, fsdd_dev and
  the one-word command utterances of AN4 dev): the right command fired (only it),
  another fired, or none; for the right ones the latency = the stream time of
  the 30 ms block that fired it + the measured compute of that block - the end
  of speech (the end of the clip's last speech island, asr.audio.energy);
- other speech (AN4 dev's 98 other utterances, sentences) and noise clips
  (``synthesize.py --nonspeech 120 --seed 9``): clips on which anything fired.

A setting is comma-separated key=value: ring (the endpointer's ring buffer, ms),
end (its end ratio), vad (webrtcvad mode), final (full|chunked), pause (ms of
quiet before an early decision; 0: none), db (how far under the loudest frame is
quiet), pvad (0: quiet by level alone, not also unvoiced to the VAD), frame (VAD
frame, ms), early (confidence that fires at a pause), threads (torch threads).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asr.audio.energy import frame_energy_db, speech_islands
from asr.audio.files import load_audio
from asr.data.manifest import read_manifest
from asr.model.bundled import default_model_path
from asr.model.checkpoint import load_model
from asr.stream.grammar import CommandMatcher, CommandSpotter, Grammar
from asr.stream.recognizer import StreamingConfig, StreamingRecognizer

THREADS = torch.get_num_threads()  # as `asr commands` runs (all cores)
BLOCK = 480  # 30 ms at 16 kHz, what a device callback delivers
LEAD, TAIL = 0.5, 1.5  # seconds of quiet-room noise around each clip
DATA = Path("data")
COMMAND_SETS = [
    DATA / "commands/synth_dev.jsonl",
    DATA / "commands/an4_dev_words.jsonl",
    DATA / "commands/fsdd_dev.jsonl",
]
SETTINGS = [
    "ring=180,end=0.8",  # `asr commands` until 2026-12-06
    "ring=240,end=0.8,pause=90,early=0.9",  # quiet judged on 30 ms VAD frames
    "ring=240,end=0.8,pause=60,early=0.95,frame=20",  # `asr commands` now
    "ring=240,end=0.8,pause=60,early=0.95,frame=10",
    "ring=240,end=0.8,pause=120,early=0.9,pvad=0,db=35",  # quiet by level alone
]
KEYS = {
    "ring": ("padding_ms", int),
    "end": ("end_ratio", float),
    "vad": ("vad_mode", int),
    "final": ("final", str),
    "pause": ("pause_ms", int),
    "db": ("pause_db", float),
    "frame": ("vad_frame_ms", int),
    "pvad": ("pause_vad", lambda v: bool(int(v))),
}


@dataclass
class Setting:
    spec: str
    cfg: StreamingConfig
    early: float | None
    threads: int | None = None
    delays: list[float] = field(default_factory=list)  # audio heard after speech
    computes: list[float] = field(default_factory=list)  # of the block that fired
    early_fires: int = 0
    counts: dict = field(default_factory=dict)


def parse_setting(spec: str) -> Setting:
    """'ring=180,end=0.8,pause=90,early=0.9' -> its streaming config and policy."""
    kwargs, early, threads = {}, None, None
    for item in filter(None, spec.split(",")):
        key, value = item.split("=")
        if key == "early":
            early = float(value)
        elif key == "threads":
            threads = int(value)
        else:
            name, kind = KEYS[key]
            kwargs[name] = kind(value)
    return Setting(spec, StreamingConfig(**kwargs), early, threads)


def speech_end(wav: np.ndarray) -> float:
    """End of the last speech island (seconds); a clip whose speech is shorter than
    an island (150 ms) ends at its last frame within 30 dB of its loudest."""
    islands = speech_islands(wav)
    if islands:
        return islands[-1][1]
    db = frame_energy_db(wav)
    return (np.flatnonzero(db > db.max() - 30)[-1] + 1) / 100


def stream(net, tok, matcher, setting: Setting, wav: np.ndarray):
    """[(text fired, stream time (s), compute (s), early)] for one padded clip."""
    torch.set_num_threads(setting.threads or THREADS)
    rec = StreamingRecognizer(net, tok, setting.cfg)
    spotter = CommandSpotter(matcher, setting.early)
    fired = []
    for k in range(0, len(wav), BLOCK):
        t0 = time.perf_counter()
        matches = [(spotter.spot(e), e.type) for e in rec.feed(wav[k : k + BLOCK])]
        compute = time.perf_counter() - t0
        for m, kind in matches:
            if m is not None:
                fired.append((m.text, (k + BLOCK) / 16000, compute, kind == "pause"))
    fired += [
        (m.text, len(wav) / 16000, 0.0, False)
        for e in rec.flush()
        if (m := spotter.spot(e))
    ]
    return fired


def tally(setting: Setting, group: str, ref: str | None, end: float, fired) -> None:
    c = setting.counts.setdefault(
        group, dict.fromkeys(("n", "right", "wrong", "any"), 0)
    )
    c["n"] += 1
    c["any"] += bool(fired)
    if ref is None:
        return
    texts = {t for t, _, _, _ in fired}
    if texts == {ref}:
        c["right"] += 1
        _, when, compute, early = fired[0]
        setting.delays.append(when - end)
        setting.computes.append(compute)
        setting.early_fires += early
    elif texts:
        c["wrong"] += 1


def load_sets(args, phrases: set[str]) -> list[tuple[str, str | None, Path]]:
    """(group, reference or None, audio path) for every clip of the benchmark."""
    clips = []
    for manifest in args.commands:
        utts = read_manifest(manifest)[:: args.every]
        clips += [("commands", u.text, Path(u.audio_filepath)) for u in utts]
    for u in (u for m in args.sentences for u in read_manifest(m)):
        if u.text in phrases:
            clips.append(("commands", u.text, Path(u.audio_filepath)))
        else:
            clips.append(("sentences", None, Path(u.audio_filepath)))
    noise = (u for m in args.noise for u in read_manifest(m))
    clips += [("noise", None, Path(u.audio_filepath)) for u in noise]
    return clips


def report(settings: list[Setting]) -> None:
    print(
        "| setting | median latency | 90th pct | audio heard + compute (medians) "
        "| fired early | right command | wrong command | sentences fired on "
        "| noise fired on |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for s in settings:
        delay, compute = np.array(s.delays) * 1000, np.array(s.computes) * 1000
        lat = delay + compute
        c, o, z = (
            s.counts.get(g, {"n": 0, "right": 0, "wrong": 0, "any": 0})
            for g in ("commands", "sentences", "noise")
        )
        med, p90 = (
            f"{np.percentile(lat, q):.0f} ms" if len(lat) else "-" for q in (50, 90)
        )
        print(
            f"| `{s.spec}` | {med} | {p90} | {np.median(delay):.0f} + "
            f"{np.median(compute):.0f} ms | {s.early_fires}/{c['right']} "
            f"| {c['right']}/{c['n']} ({100 * c['right'] / max(c['n'], 1):.1f}%) "
            f"| {c['wrong']} | {o['any']}/{o['n']} | {z['any']}/{z['n']} |"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--grammar", type=Path, default=Path("examples/commands.yaml"))
    ap.add_argument("--commands", nargs="+", type=Path, default=COMMAND_SETS)
    ap.add_argument(
        "--sentences", nargs="*", type=Path, default=[DATA / "commands/an4_dev.jsonl"]
    )
    ap.add_argument(
        "--noise",
        nargs="*",
        type=Path,
        default=[DATA / "synth/nonspeech_dev/manifest.jsonl"],
    )
    ap.add_argument("--every", type=int, default=1, help="every Nth command clip")
    ap.add_argument("--setting", action="append", help="a setting (repeatable)")
    ap.add_argument(
        "--show", action="store_true", help="list what fires on sentences and noise"
    )
    args = ap.parse_args(argv)
    net, tok, _ = load_model(args.model or default_model_path())
    matcher = CommandMatcher(Grammar.load(args.grammar), tok)
    settings = [parse_setting(s) for s in args.setting or SETTINGS]
    clips = load_sets(args, {t for _, t, _ in matcher.candidates})
    rng = np.random.default_rng(0)
    for k, (group, ref, path) in enumerate(clips):
        clip = load_audio(path)
        noise = (3e-4 * rng.standard_normal(int((LEAD + TAIL) * 16000))).astype(
            np.float32
        )
        wav = np.concatenate(
            [noise[: int(LEAD * 16000)], clip, noise[int(LEAD * 16000) :]]
        )
        end = LEAD + speech_end(clip) if ref else 0.0
        if k == 0:  # warm up (first calls of each shape are slow)
            stream(net, tok, matcher, settings[0], wav)
        for s in settings:
            fired = stream(net, tok, matcher, s, wav)
            tally(s, group, ref, end, fired)
            if args.show and fired and ref is None:
                what = ", ".join(f"{t}{' (early)' * e}" for t, _, _, e in fired)
                print(f"{s.spec}: {group} {path.name}: {what}", file=sys.stderr)
        if (k + 1) % 100 == 0:
            print(f"{k + 1}/{len(clips)} clips", file=sys.stderr, flush=True)
    print(f"{len(clips)} clips; model {args.model or default_model_path()}\n")
    report(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
