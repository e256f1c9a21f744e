"""The database schema as numbered migrations, applied in order; `schema_version` records the last one
applied.

Append new migrations; never edit one that has shipped.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

_V1 = """
CREATE TABLE organizations (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE folders (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    org INTEGER NOT NULL REFERENCES organizations(pk),
    parent INTEGER REFERENCES folders(pk),
    name TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX folders_unique_name ON folders(org, ifnull(parent, 0), name);
CREATE INDEX folders_by_parent ON folders(org, parent, pk);

CREATE TABLE experiments (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    org INTEGER NOT NULL REFERENCES organizations(pk),
    folder INTEGER REFERENCES folders(pk),
    name TEXT NOT NULL,
    description TEXT,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX experiments_by_org ON experiments(org, pk);
CREATE INDEX experiments_by_folder ON experiments(folder, pk);

CREATE TABLE api_keys (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    org INTEGER NOT NULL REFERENCES organizations(pk),
    kind TEXT NOT NULL CHECK (kind IN ('org', 'ingestion')),
    experiment INTEGER REFERENCES experiments(pk),
    name TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    token_hint TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_keys_by_experiment ON api_keys(experiment, pk);

-- One row per stored metric point, clustered by the listing order: name, step (-1 = none), ingestion order.
CREATE TABLE metric_points (
    experiment INTEGER NOT NULL,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    value REAL NOT NULL,
    ts TEXT NOT NULL,
    ts_auto INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    client_event_id TEXT NOT NULL,
    PRIMARY KEY (experiment, name, step, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX metric_points_by_client_event_id ON metric_points(experiment, client_event_id);

-- Per experiment and metric name: what the catalog reports, kept up to date by ingestion.
CREATE TABLE metric_series (
    experiment INTEGER NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    first_ts TEXT NOT NULL,
    last_us INTEGER NOT NULL,
    last_ts TEXT NOT NULL,
    PRIMARY KEY (experiment, name)
) WITHOUT ROWID;
CREATE INDEX metric_series_by_name ON metric_series(name, experiment);

CREATE TABLE metric_label_values (
    experiment INTEGER NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (experiment, name, key, value)
) WITHOUT ROWID;
CREATE INDEX metric_label_values_by_name ON metric_label_values(name, key, value);

CREATE TABLE annotations (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    experiment INTEGER NOT NULL REFERENCES experiments(pk),
    text TEXT NOT NULL,
    step INTEGER,
    ts TEXT NOT NULL,
    ts_auto INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    client_event_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (experiment, client_event_id)
);
CREATE INDEX annotations_by_experiment ON annotations(experiment, pk);

-- Idempotency-Key records, per organisation; kept for a bounded time (see idempotency.py).
CREATE TABLE idempotency_keys (
    org INTEGER NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    status INTEGER,
    body BLOB,
    headers TEXT,
    created_us INTEGER NOT NULL,
    PRIMARY KEY (org, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_us);

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters(name, value) VALUES ('metric_seq', 0);
"""

# Ingestion keys may expire (the SDK mints its keys with an expiry, so the keys of clients that exit without
# cleaning up stop working on their own).
_V2 = """
ALTER TABLE api_keys ADD COLUMN expires_us INTEGER;
ALTER TABLE api_keys ADD COLUMN expires_at TEXT;
"""

# The resource lifecycle (contract 1.2.0): experiment tags, archiving of experiments and folders.
# `tags` keeps an experiment's tags as sent (a JSON array, in order); `experiment_tags` holds one row per tag for
# the `tag` filter of listExperiments, keyed so that a filtered page walk is one range of it in experiment order;
# its primary key forbids a tag twice on one experiment.
_V3 = """
ALTER TABLE experiments ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE experiments ADD COLUMN archived_at TEXT;
ALTER TABLE folders ADD COLUMN archived_at TEXT;
CREATE TABLE experiment_tags (
    org INTEGER NOT NULL,
    tag TEXT NOT NULL,
    experiment INTEGER NOT NULL REFERENCES experiments(pk),
    PRIMARY KEY (org, tag, experiment)
) WITHOUT ROWID;
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3]
