"""Tally: a typed Python SDK for the Tally Metrics API."""
