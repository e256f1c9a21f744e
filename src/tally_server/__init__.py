"""The Tally reference server: every operation of openapi/tally.yaml, on SQLite."""
