"""Audio in: files and devices -> 16 kHz mono float32 waveforms (files.py,
mic.py), resampling, and frame energies / speech islands (energy.py)."""
