"""Features: the log-mel + CMVN frontend (frontend.py) and the augmentations of
waveforms and features used in training (augment.py and the modules it names)."""
