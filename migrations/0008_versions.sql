-- Versions and deployments. Every upload of a script is an immutable version (its
-- component, its bindings, the tags and annotations it came with); a deployment says
-- which one or two versions serve the script's traffic and with what shares. A script's
-- newest deployment is its live one. Bindings now belong to a version, so a split runs
-- each version with its own.
CREATE TABLE script_versions (
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    -- Short, random, URL-safe (12 hex characters).
    id         TEXT NOT NULL,
    -- 1, 2, 3, ... per script: the order of uploads.
    number     INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    -- The custom tags the script had after this upload, a JSON array (for the record).
    tags       TEXT NOT NULL DEFAULT '[]',
    message    TEXT,
    tag        TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, name, id),
    UNIQUE (namespace, name, number),
    FOREIGN KEY (namespace, name) REFERENCES scripts (namespace, name) ON DELETE CASCADE
);
CREATE INDEX script_versions_by_sha256 ON script_versions (sha256);

CREATE TABLE script_deployments (
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    id         TEXT NOT NULL,
    -- 1, 2, 3, ... per script; the highest is live.
    number     INTEGER NOT NULL,
    -- [{"version_id": "...", "percentage": 90}, ...]: one or two, summing to 100.
    versions   TEXT NOT NULL,
    -- upload | api | rollback
    source     TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, name, id),
    UNIQUE (namespace, name, number),
    FOREIGN KEY (namespace, name) REFERENCES scripts (namespace, name) ON DELETE CASCADE
);

CREATE TABLE version_bindings (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    version   TEXT NOT NULL,
    binding   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    spec      TEXT NOT NULL DEFAULT '{}',
    -- Sealed as before: the associated data is (namespace, script, binding), so the
    -- same sealed value serves every version of the script.
    secret    BLOB,
    PRIMARY KEY (namespace, name, version, binding),
    FOREIGN KEY (namespace, name, version) REFERENCES script_versions (namespace, name, id)
        ON DELETE CASCADE
);

-- Every script so far becomes its first version, deployed to 100 %.
INSERT INTO script_versions (namespace, name, id, number, sha256, size, tags, created_at)
SELECT s.namespace, s.name, lower(hex(randomblob(6))), 1, s.sha256, s.size,
       (SELECT json_group_array(t.tag) FROM script_tags t
        WHERE t.namespace = s.namespace AND t.name = s.name
          AND t.tag NOT LIKE 'customer\_id:%' ESCAPE '\'),
       s.updated_at
FROM scripts s;

INSERT INTO version_bindings (namespace, name, version, binding, kind, spec, secret)
SELECT b.namespace, b.name, v.id, b.binding, b.kind, b.spec, b.secret
FROM script_bindings b
JOIN script_versions v ON v.namespace = b.namespace AND v.name = b.name;

INSERT INTO script_deployments (namespace, name, id, number, versions, source, created_at)
SELECT namespace, name, lower(hex(randomblob(6))), 1,
       json_array(json_object('version_id', id, 'percentage', 100)), 'upload', created_at
FROM script_versions;

DROP TABLE script_bindings;

-- Usage is counted per version too ('' for rows flushed before versions existed).
CREATE TABLE usage_by_version (
    namespace TEXT NOT NULL,
    script TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    minute INTEGER NOT NULL,
    invocations INTEGER NOT NULL,
    script_error INTEGER NOT NULL,
    exceeded_cpu INTEGER NOT NULL,
    exceeded_memory INTEGER NOT NULL,
    exceeded_wall_time INTEGER NOT NULL,
    overloaded INTEGER NOT NULL,
    cpu_us INTEGER NOT NULL,
    wall_us INTEGER NOT NULL,
    subrequests INTEGER NOT NULL,
    peak_memory_bytes INTEGER NOT NULL,
    canceled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, script, customer_id, version, minute)
);
INSERT INTO usage_by_version (namespace, script, customer_id, minute, invocations,
    script_error, exceeded_cpu, exceeded_memory, exceeded_wall_time, overloaded, cpu_us,
    wall_us, subrequests, peak_memory_bytes, canceled)
SELECT namespace, script, customer_id, minute, invocations, script_error, exceeded_cpu,
    exceeded_memory, exceeded_wall_time, overloaded, cpu_us, wall_us, subrequests,
    peak_memory_bytes, canceled
FROM usage;
DROP TABLE usage;
ALTER TABLE usage_by_version RENAME TO usage;
CREATE INDEX usage_by_customer ON usage (customer_id, minute);
