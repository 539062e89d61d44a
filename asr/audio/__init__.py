"""Audio in: files and devices -> 16 kHz mono float32 waveforms (files.py, with
av_read.py for what soundfile cannot read; mic.py), resampling, frame energies and
speech islands (energy.py), and pauses at a clip's edges (padding.py)."""
