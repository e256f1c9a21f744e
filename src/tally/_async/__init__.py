"""The I/O-bearing code, written once in async form; `scripts/unasync.py` derives `tally/_sync/` from it."""
