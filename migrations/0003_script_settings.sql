-- What the platform's admin sets for a script by name (`dispatcher limits`, `dispatcher
-- outbound`). Keyed by name, not by version, and not removed with the script: a replaced,
-- or deleted and re-uploaded, script keeps the limits the platform gave its name.

CREATE TABLE script_settings (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- Per-script limits; NULL means the server's default.
    cpu_ms      INTEGER,
    memory_mb   INTEGER,
    subrequests INTEGER,
    wall_ms     INTEGER,
    -- The outbound policy as JSON, `{"allow": [...]}` or `{"worker": {...}}`; NULL means
    -- the server's default policy.
    outbound    TEXT,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, name)
);
