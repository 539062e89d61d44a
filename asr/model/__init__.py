"""The acoustic model (acoustic.py), its gate-level reference (gates.py),
checkpoints (checkpoint.py), exports and their runtime (export.py, exported.py),
and device choice (device.py)."""
