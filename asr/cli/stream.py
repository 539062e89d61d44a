"""`asr stream`, `asr commands` and `asr enrol`: live recognition (or recording
for enrolment) from a microphone or a file."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from asr.cli.common import load_transcriber, model_args
from asr.data.text import PhoneTokenizer
from asr.decode.decoder import DecodingOptions, build_decoder, model_decoding_defaults

if TYPE_CHECKING:
    from asr.stream.recognizer import Event, StreamingRecognizer

CHUNK_MS, RIGHT_CONTEXT_MS = 240, 160  # latency-controlled BiLSTM defaults
# VAD ring deciding the end of speech: dictation keeps the pauses inside
# sentences; commands end sooner, and a sure command fires earlier still, after
# COMMANDS_EARLY_MS of quiet judged on 20 ms VAD frames (BENCHMARKS.md, "Voice
# commands": a shorter pause or finer frames fire on more sentences that start
# with a command word)
COMMANDS_ENDPOINT_MS, STREAM_ENDPOINT_MS = 240, 300
COMMANDS_EARLY_MS, COMMANDS_VAD_FRAME_MS = 60, 20


def add_stream_commands(sub) -> None:
    for name, help_text in (
        ("stream", "live transcription with partial results"),
        ("commands", "voice commands from a YAML grammar"),
    ):
        p = sub.add_parser(name, help=help_text)
        model_args(p, compute_flag="--compute-device")  # --device is the microphone
        if name == "commands":
            p.add_argument("--grammar", type=Path, required=True)
        _source_args(p)
        p.add_argument("--json", action="store_true", help="one JSON object per event")
        p.add_argument("--chunk-ms", type=int, default=CHUNK_MS)
        p.add_argument("--right-context-ms", type=int, default=RIGHT_CONTEXT_MS)
        p.add_argument("--final", choices=["full", "chunked"], default="full")
        ring = COMMANDS_ENDPOINT_MS if name == "commands" else STREAM_ENDPOINT_MS
        _endpoint_arg(p, ring)
        if name == "commands":
            _early_args(p)
        _threads_arg(p)
        p.set_defaults(func=cmd_stream if name == "stream" else cmd_commands)
    p = sub.add_parser(
        "enrol",
        help="record a speaker saying each word a few times (for asr adapt)",
    )
    model_args(p, compute_flag="--compute-device")
    words = p.add_mutually_exclusive_group(required=True)
    words.add_argument("--words", nargs="+", help="the words or phrases to say")
    words.add_argument(
        "--grammar", type=Path, help="every word of this command grammar"
    )
    p.add_argument("--repeats", type=int, default=3, help="times each (default 3)")
    p.add_argument("--out", type=Path, required=True, help="folder for the clips")
    p.add_argument("--speaker", default="me", help="speaker name in the manifest")
    _source_args(p)
    _endpoint_arg(p, STREAM_ENDPOINT_MS)
    _threads_arg(p)
    p.set_defaults(
        func=cmd_enrol,
        json=False,
        chunk_ms=CHUNK_MS,
        right_context_ms=RIGHT_CONTEXT_MS,
        final="full",
    )


def _source_args(p) -> None:
    p.add_argument("--input", type=Path, help="replay this file instead of a mic")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="replay speed for --input (1: real time, 0: no waiting)",
    )
    p.add_argument(
        "--device",
        dest="mic_device",
        default=None,
        help="audio input device, index or name (see --list-devices); "
        "default: the system's default input",
    )
    p.add_argument("--list-devices", action="store_true")
    p.add_argument(
        "--duration", type=float, help="stop after this many seconds of audio"
    )


def _endpoint_arg(p, default_ms: int) -> None:
    p.add_argument(
        "--endpoint-ms",
        type=int,
        default=default_ms,
        help="VAD ring buffer deciding the end of speech",
    )


def _threads_arg(p) -> None:
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")


def _early_args(p) -> None:
    p.add_argument(
        "--early-ms",
        type=int,
        default=COMMANDS_EARLY_MS,
        help="fire a sure match after this much quiet, before the end of speech "
        "is decided (0: only at the end)",
    )
    p.add_argument(
        "--early-confidence",
        type=float,
        default=None,
        help="the match confidence that fires early (default 0.95)",
    )
    p.add_argument(
        "--vad-frame-ms",
        type=int,
        choices=(10, 20, 30),
        default=COMMANDS_VAD_FRAME_MS,
        help="webrtcvad frame length: shorter frames end speech sooner",
    )


def audio_source(args) -> Iterator[tuple[np.ndarray, int]]:
    """(block, sample rate) from --input (paced like a device) or a microphone,
    until --duration seconds of audio have passed."""
    blocks = replay(args.input, args.speed) if args.input else microphone(args)
    heard = 0.0
    for block, rate in blocks:
        yield block, rate
        heard += len(block) / rate
        if args.duration is not None and heard >= args.duration:
            return


def listen(args) -> Iterator[tuple[np.ndarray, int]]:
    """Start the source now, before the model loads: the microphone opens and
    its blocks queue up (a replayed file's clock starts), so that what is said
    during the load is heard, just later. Returns the source's blocks."""
    blocks = audio_source(args)
    first = next(blocks, None)
    return itertools.chain([] if first is None else [first], blocks)


def microphone(args) -> Iterator[tuple[np.ndarray, int]]:
    from asr.audio.mic import Microphone

    device = args.mic_device
    if device is not None and str(device).isdigit():
        device = int(device)
    with Microphone(device=device) as mic:
        if not args.json:
            print(
                f"listening on {mic.name} at {mic.rate} Hz (Ctrl-C to stop)",
                file=sys.stderr,
            )
        for block in mic.blocks():
            yield block, mic.rate


def replay(path: Path, speed: float, block_seconds: float = 0.03):
    """A file's audio at its own rate in device-sized blocks, paced by ``speed``."""
    from asr.audio.files import native_blocks

    rate, blocks = native_blocks(path, block_seconds)
    t0 = time.monotonic()
    played = 0
    for block in blocks:
        if speed > 0:
            delay = t0 + played / rate / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        played += len(block)
        yield block, rate


def make_recognizer(args, model, tokenizer) -> StreamingRecognizer:
    import torch  # lazily, for start-up: `asr --help` and transcribe need no torch

    from asr.stream.recognizer import StreamingConfig, StreamingRecognizer

    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f"{args.model}: streaming runs the encoder chunk by chunk and needs a "
            ".pt checkpoint, not an exported model"
        )
    cfg = StreamingConfig(
        chunk_frames=max(1, round(args.chunk_ms / 40)),
        right_frames=max(0, round(args.right_context_ms / 40)),
        final=args.final,
        padding_ms=args.endpoint_ms,
        pause_ms=getattr(args, "early_ms", 0),
        vad_frame_ms=getattr(args, "vad_frame_ms", 30),
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    return StreamingRecognizer(model, tokenizer, cfg, phone_decoder(model, tokenizer))


def phone_decoder(model, tokenizer):
    """A phone model's lexicon + LM decoder (its own defaults), else None: a
    character model streams greedily."""
    if not isinstance(tokenizer, PhoneTokenizer):
        return None
    options = DecodingOptions.for_model(model_decoding_defaults(model, tokenizer))
    return build_decoder(options, tokenizer)


def run_events(rec: StreamingRecognizer, blocks, on_event, done=None) -> int:
    """Feed the source's blocks to the recognizer until they end or ``done()``
    is true; Ctrl-C ends cleanly after a flush."""
    try:
        for block, rate in blocks:
            for event in rec.feed(block, rate):
                on_event(event)
            if done is not None and done():
                break
    except KeyboardInterrupt:
        pass
    for event in rec.flush():
        on_event(event)
    return 0


def _list_devices() -> int:
    from asr.audio.mic import list_devices

    for d in list_devices():
        print(
            f"{d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, "
            f"{d['default_samplerate']:.0f} Hz)"
        )
    return 0


def cmd_stream(args) -> int:
    if args.list_devices:
        return _list_devices()
    blocks = listen(args)
    tr = load_transcriber(args, DecodingOptions())
    rec = make_recognizer(args, tr.model, tr.tokenizer)
    tty = sys.stdout.isatty() and not args.json

    def show(event: Event) -> None:
        if args.json:
            print(json.dumps(event.to_dict()), flush=True)
        elif event.type == "final":
            print(
                f"\r\033[K[{event.start:7.2f}s] {event.text}"
                if tty
                else f"[{event.start:7.2f}s] {event.text}",
                flush=True,
            )
        elif tty:
            print(f"\r\033[K{event.text}", end="", flush=True)

    return run_events(rec, blocks, show)


def cmd_commands(args) -> int:
    if args.list_devices:
        return _list_devices()
    blocks = listen(args)
    # lazily, for start-up: the grammar module needs torch; listen first
    from asr.stream.grammar import (
        EARLY_CONFIDENCE,
        CommandMatcher,
        CommandSpotter,
        Grammar,
    )

    grammar = Grammar.load(args.grammar)
    tr = load_transcriber(args, DecodingOptions())
    early = None  # no early firing
    if args.early_ms > 0:
        early = args.early_confidence
        early = EARLY_CONFIDENCE if early is None else early
    spotter = CommandSpotter(CommandMatcher(grammar, tr.tokenizer), early)
    rec = make_recognizer(args, tr.model, tr.tokenizer)

    def on_event(event: Event) -> None:
        m = spotter.spot(event)
        if m is None:
            return
        if args.json:
            print(
                json.dumps(
                    {
                        "command": m.command.phrase,
                        "text": m.text,
                        "slots": m.slots,
                        "confidence": round(m.confidence, 4),
                        "start": round(event.start, 3),
                        "end": round(event.end, 3),
                    }
                ),
                flush=True,
            )
        else:
            print(
                f"[{event.start:7.2f}s] {m.command.phrase}  ({m.text!r}, "
                f"confidence {m.confidence:.2f})",
                flush=True,
            )
        m.command.action.execute(m.slots, args.json)

    return run_events(rec, blocks, on_event)


def cmd_enrol(args) -> int:
    """Prompt each word ``--repeats`` times; every utterance the endpointer cuts
    is saved as the word prompted, with a manifest for ``asr adapt``."""
    if args.list_devices:
        return _list_devices()
    from asr.audio.files import SAMPLE_RATE
    from asr.data.manifest import Utterance, write_manifest
    from asr.stream.grammar import Grammar

    words = args.words or Grammar.load(args.grammar).words()
    prompts = [w for _ in range(args.repeats) for w in words]
    tr = load_transcriber(args, DecodingOptions())
    rec = make_recognizer(args, tr.model, tr.tokenizer)
    args.out.mkdir(parents=True, exist_ok=True)
    utts: list[Utterance] = []

    def prompt() -> None:
        if len(utts) < len(prompts):
            print(
                f"say: {prompts[len(utts)]}  ({len(utts) + 1}/{len(prompts)})",
                file=sys.stderr,
                flush=True,
            )

    def on_event(event: Event) -> None:
        if event.type != "final" or len(utts) == len(prompts):
            return
        word = prompts[len(utts)]
        path = args.out / f"{len(utts):03d}_{word.replace(' ', '_')}.wav"
        sf.write(path, rec.encoder.wav, SAMPLE_RATE, subtype="PCM_16")
        utts.append(
            Utterance(path.name, len(rec.encoder.wav) / SAMPLE_RATE, word, args.speaker)
        )
        print(
            f"  saved {path.name} (the model heard {event.text!r})",
            file=sys.stderr,
            flush=True,
        )
        prompt()

    prompt()
    finished = lambda: len(utts) == len(prompts)  # noqa: E731
    run_events(rec, listen(args), on_event, done=finished)
    manifest = args.out / "enrol.jsonl"
    write_manifest(manifest, utts)
    print(f"{manifest}: {len(utts)} of {len(prompts)} clips")
    if utts:
        print(f"next: asr adapt {manifest} --output {args.out / 'adapted.pt'}")
    return 0 if len(utts) == len(prompts) else 1
