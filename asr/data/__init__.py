"""Data: JSONL manifests (manifest.py), corpus importers (kaldi.py), text and the
character tokenizer (text.py), datasets and batching (dataset.py, batches.py,
sampler.py), and per-speaker equalisation of manifests (speaker_eq.py)."""
