"""Live recognition without devices: the chunked LC-BLSTM recogniser with VAD
endpointing (recognizer.py) and command grammars (grammar.py)."""
