-- Usage metering: what each script's runs cost, per minute (Unix seconds at the
-- minute's start). Written in batches by the server's flush task; a row is added to
-- when the same script and minute are flushed again.
CREATE TABLE usage (
    namespace TEXT NOT NULL,
    script TEXT NOT NULL,
    -- '' for the platform's own scripts.
    customer_id TEXT NOT NULL,
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
    PRIMARY KEY (namespace, script, customer_id, minute)
);
CREATE INDEX usage_by_customer ON usage (customer_id, minute);
