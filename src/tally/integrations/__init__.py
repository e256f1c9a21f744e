"""Tally inside the training frameworks people use, each an extra that brings its framework:

- `tally.integrations.lightning.TallyLogger`: a PyTorch Lightning logger (`pip install 'tally-metrics[lightning]'`);
- `tally.integrations.transformers.TallyCallback`: a Hugging Face `Trainer` callback (`[transformers]`);
- `tally.integrations.keras.TallyCallback`: a Keras 3 callback (`[keras]`, on any Keras backend).

Each logs through the public `client.run(...)` (the durable spool: a framework's logging never waits on the
network) and is imported only by name: this package imports no framework, so `import tally` never loads torch,
lightning, transformers, keras or jax. What they share is in `_common`.
"""
