"""asr: BiLSTM-CTC speech recognition; docs/architecture.md draws the layout."""

__version__ = "0.1.0"
