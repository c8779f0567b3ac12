-- A script's bindings: the capabilities it reaches through `env`, by name.

CREATE TABLE script_bindings (
    namespace TEXT NOT NULL,
    name      TEXT NOT NULL,
    -- The name the script uses (`env.kv("CACHE")`).
    binding   TEXT NOT NULL,
    -- plain_text | secret_text | kv_namespace | d1 | service
    kind      TEXT NOT NULL,
    -- plain_text: the text.
    text      TEXT,
    -- secret_text: nonce || XChaCha20-Poly1305 ciphertext under the data dir's secrets.key.
    secret    BLOB,
    -- kv_namespace: the namespace; d1: the database; service: the script.
    target    TEXT,
    PRIMARY KEY (namespace, name, binding),
    FOREIGN KEY (namespace, name) REFERENCES scripts (namespace, name) ON DELETE CASCADE
);
