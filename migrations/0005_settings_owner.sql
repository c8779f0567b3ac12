-- Settings belong to the script's owner. Until now a script's limits and outbound policy
-- were keyed by name only and survived a delete, so the next customer to upload the same
-- name inherited them (an outbound worker's credential-bearing params included).
--
-- `customer_id` is the owner the settings were given to (NULL for the platform's own
-- scripts); they apply only while the script under that name has that owner, and a
-- delete removes them in the same transaction. `outbound_sealed` holds the outbound
-- policy sealed like a secret (the plaintext `outbound` column is emptied by the store
-- when it opens and stays NULL).
ALTER TABLE script_settings ADD COLUMN customer_id TEXT;
ALTER TABLE script_settings ADD COLUMN outbound_sealed BLOB;

-- Settings whose script is gone belong to nobody.
DELETE FROM script_settings
WHERE namespace = 'customers'
  AND NOT EXISTS (SELECT 1 FROM scripts s
                  WHERE s.namespace = script_settings.namespace AND s.name = script_settings.name);

-- Settings last changed before the current script under their name was created were given
-- to an earlier owner of the name (a replace keeps `created_at`; a delete and re-upload
-- does not).
DELETE FROM script_settings
WHERE namespace = 'customers'
  AND updated_at < (SELECT s.created_at FROM scripts s
                    WHERE s.namespace = script_settings.namespace AND s.name = script_settings.name);

UPDATE script_settings
SET customer_id = (SELECT s.customer_id FROM scripts s
                   WHERE s.namespace = script_settings.namespace AND s.name = script_settings.name);
