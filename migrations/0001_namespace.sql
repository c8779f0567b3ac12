-- The namespace: customers, their scripts and the scripts' tags.

CREATE TABLE customers (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    -- SHA-256 of the customer's token; the token itself is never stored.
    token_sha256 BLOB NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE scripts (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    customer_id TEXT REFERENCES customers(id),
    -- SHA-256 of the component; its bytes live in blobs/ under this name.
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, name)
);
CREATE INDEX scripts_by_customer ON scripts (customer_id);

-- Every tag of a script, including its `customer_id:<id>` tag.
CREATE TABLE script_tags (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    tag       TEXT NOT NULL,
    PRIMARY KEY (namespace, name, tag),
    FOREIGN KEY (namespace, name) REFERENCES scripts (namespace, name) ON DELETE CASCADE
);
CREATE INDEX script_tags_by_tag ON script_tags (tag);

-- Compiled artifacts on disk: the digest we wrote, checked before deserializing.
CREATE TABLE artifacts (
    wasm_sha256     TEXT NOT NULL,
    engine_hash     TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    PRIMARY KEY (wasm_sha256, engine_hash)
);
