"""The `asr` command: app.py builds the parser (``main``) from one module per
command group; common.py holds what the groups share. A command group loads the
stage it drives when the command runs, so `asr --help` starts fast."""
