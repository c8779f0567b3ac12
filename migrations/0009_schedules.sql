-- Cron Triggers: a script's schedules (standard 5-field cron, UTC), in the order given.
-- They belong to the script, whichever version is deployed, and go with it.
CREATE TABLE script_schedules (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    cron      TEXT NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (namespace, name, cron),
    FOREIGN KEY (namespace, name) REFERENCES scripts (namespace, name) ON DELETE CASCADE
);

-- Usage is counted per event too: `fetch` (requests and calls between scripts) or
-- `scheduled`; rows so far were all fetches.
CREATE TABLE usage_by_event (
    namespace TEXT NOT NULL,
    script TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL DEFAULT 'fetch',
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
    PRIMARY KEY (namespace, script, customer_id, version, event, minute)
);
INSERT INTO usage_by_event (namespace, script, customer_id, version, minute, invocations,
    script_error, exceeded_cpu, exceeded_memory, exceeded_wall_time, overloaded, cpu_us,
    wall_us, subrequests, peak_memory_bytes, canceled)
SELECT namespace, script, customer_id, version, minute, invocations, script_error,
    exceeded_cpu, exceeded_memory, exceeded_wall_time, overloaded, cpu_us, wall_us,
    subrequests, peak_memory_bytes, canceled
FROM usage;
DROP TABLE usage;
ALTER TABLE usage_by_event RENAME TO usage;
CREATE INDEX usage_by_customer ON usage (customer_id, minute);
