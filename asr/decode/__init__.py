"""CTC log-probs -> text: greedy and beam search with lexicon and LM (decoder.py,
beam.py), n-gram LMs (lm.py; the general-English one: english_lm.py from
sphinx_lm.py and lm_prune.py), word times (alignment.py), error rates
(metrics.py) and decoder tuning (tuning.py)."""
