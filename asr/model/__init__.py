"""The acoustic model (acoustic.py), its gate-level reference (gates.py),
checkpoints (checkpoint.py), exports and their runtime (export.py, exported.py),
the shipped model files (bundled.py) and device choice (device.py)."""
