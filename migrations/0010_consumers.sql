-- Queue consumers: the script that receives a queue's messages, and how. A queue belongs
-- to the data owner of the scripts that use it (a customer, or `_platform`), and has at
-- most one consumer. Consumers go with their script.
CREATE TABLE script_consumers (
    namespace            TEXT NOT NULL,
    name                 TEXT NOT NULL,
    owner                TEXT NOT NULL,
    queue                TEXT NOT NULL,
    max_batch_size       INTEGER NOT NULL,
    max_batch_timeout_ms INTEGER NOT NULL,
    max_retries          INTEGER NOT NULL,
    dead_letter_queue    TEXT,
    PRIMARY KEY (namespace, name, queue),
    UNIQUE (owner, queue),
    FOREIGN KEY (namespace, name) REFERENCES scripts (namespace, name) ON DELETE CASCADE
);
