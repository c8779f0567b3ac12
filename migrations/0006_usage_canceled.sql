-- Runs whose client went away before the whole response (the outcome `canceled`): the
-- run was dropped then, not left to its wall-time limit. Rows flushed before this
-- migration counted none.
ALTER TABLE usage ADD COLUMN canceled INTEGER NOT NULL DEFAULT 0;
