"""The `asr` command: transcribe, evaluate, and the tools around them (lm,
tune-decoder, stats, info, average, demo, stream, commands, explain, export, adapt)."""

from __future__ import annotations

import argparse
import logging
import sys

from asr.audio.files import AudioError
from asr.audio.mic import MicrophoneError
from asr.cli.adapt import add_adapt_command
from asr.cli.explain import add_explain_command
from asr.cli.export import add_export_command
from asr.cli.stream import add_stream_commands
from asr.cli.tools import add_tool_commands
from asr.cli.transcribe import add_transcribe_commands
from asr.data.manifest import ManifestError
from asr.model.bundled import CheckpointError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except (
        CheckpointError,
        ManifestError,
        AudioError,
        ValueError,
        FileNotFoundError,
        MicrophoneError,
    ) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="asr", description="BiLSTM-CTC speech recognition"
    )
    sub = ap.add_subparsers(dest="command", required=True)

    add_transcribe_commands(sub)
    add_tool_commands(sub)
    add_stream_commands(sub)
    add_explain_command(sub)
    add_export_command(sub)
    add_adapt_command(sub)
    return ap


if __name__ == "__main__":
    sys.exit(main())
