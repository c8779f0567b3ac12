-- A binding is stored as its kind and a JSON spec (the fields of its upload metadata past
-- `type` and `name`, secrets excepted), so the store no longer knows what each kind
-- holds: the binding units (`runtime/bindings/`) do. A secret stays sealed in `secret`.
ALTER TABLE script_bindings ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';

UPDATE script_bindings SET spec = json_object('text', text) WHERE kind = 'plain_text';
UPDATE script_bindings SET spec = json_object('namespace', target) WHERE kind = 'kv_namespace';
UPDATE script_bindings SET spec = json_object('database', target) WHERE kind = 'd1';
UPDATE script_bindings SET spec = json_object('service', target) WHERE kind = 'service';

ALTER TABLE script_bindings DROP COLUMN text;
ALTER TABLE script_bindings DROP COLUMN target;
