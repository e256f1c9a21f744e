"""The framework integrations' tests: each trains a tiny model for a few steps on CPU with the real library and
reads the logged metrics back from the live server. Marked `frameworks` (`-m "not frameworks"` leaves them out)."""

from __future__ import annotations

import os

# Keras 3 picks its backend at import: JAX, from its CPU wheels (the test environment has no TensorFlow).
os.environ.setdefault("KERAS_BACKEND", "jax")
