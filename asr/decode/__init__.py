"""CTC log-probs -> text: greedy and beam search with lexicon and LM
(decoder.py), n-gram LMs (lm.py), word times (alignment.py), error rates
(metrics.py) and decoder tuning (tuning.py)."""
