# Generated from src/tally/_async/__init__.py by scripts/unasync.py. Do not edit: edit the async file.
"""The I/O-bearing code, generated."""
