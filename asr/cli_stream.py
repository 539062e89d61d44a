"""`asr stream` and `asr commands`: live recognition from a microphone or a file."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from asr.decoding import DecodingOptions
from asr.streaming import Event, StreamingConfig, StreamingRecognizer


def add_stream_commands(sub, model_args) -> None:
    for name, help_text in (
        ("stream", "live transcription with partial results"),
        ("commands", "voice commands from a YAML grammar"),
    ):
        p = sub.add_parser(name, help=help_text)
        model_args(p, compute_flag="--compute-device")  # --device is the microphone
        if name == "commands":
            p.add_argument("--grammar", type=Path, required=True)
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
        p.add_argument("--json", action="store_true", help="one JSON object per event")
        p.add_argument("--chunk-ms", type=int, default=240)
        p.add_argument("--right-context-ms", type=int, default=160)
        p.add_argument("--final", choices=["full", "chunked"], default="full")
        # commands are short: end them sooner; dictation keeps pauses inside sentences
        p.add_argument(
            "--endpoint-ms",
            type=int,
            default=180 if name == "commands" else 300,
            help="VAD ring buffer deciding the end of speech",
        )
        p.set_defaults(func=cmd_stream if name == "stream" else cmd_commands)


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


def microphone(args) -> Iterator[tuple[np.ndarray, int]]:
    from asr.mic import Microphone

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
    from asr.audio import native_blocks

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
    )
    return StreamingRecognizer(model, tokenizer, cfg)


def run_events(rec: StreamingRecognizer, args, on_event) -> int:
    """Feed the source to the recognizer; Ctrl-C ends cleanly after a flush."""
    try:
        for block, rate in audio_source(args):
            for event in rec.feed(block, rate):
                on_event(event)
    except KeyboardInterrupt:
        pass
    for event in rec.flush():
        on_event(event)
    return 0


def _list_devices() -> int:
    from asr.mic import list_devices

    for d in list_devices():
        print(
            f"{d['index']:3d}  {d['name']}  ({d['max_input_channels']} ch, "
            f"{d['default_samplerate']:.0f} Hz)"
        )
    return 0


def cmd_stream(args) -> int:
    if args.list_devices:
        return _list_devices()
    from asr.cli import load_transcriber

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

    return run_events(rec, args, show)


def cmd_commands(args) -> int:
    if args.list_devices:
        return _list_devices()
    from asr.cli import load_transcriber
    from asr.commands import CommandMatcher, Grammar

    matcher_grammar = Grammar.load(args.grammar)
    tr = load_transcriber(args, DecodingOptions())
    matcher = CommandMatcher(matcher_grammar, tr.tokenizer)
    rec = make_recognizer(args, tr.model, tr.tokenizer)

    def on_event(event: Event) -> None:
        if event.type != "final":
            return
        m = matcher.match(rec.last_log_probs)
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

    return run_events(rec, args, on_event)
