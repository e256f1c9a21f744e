"""Test support for users of Tally: a pytest plugin with a real local server (see `tally.testing.pytest_plugin`)."""
