-- A session remembers the epoch of its operator's password when it began;
-- a reset or change of the password moves the epoch on, which ends every
-- other session of that operator.
ALTER TABLE operators ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
-- A removed operator keeps their row (and so their name, which the audit
-- log refers to) but can never sign in again.
ALTER TABLE operators ADD COLUMN removed_at_ms INTEGER;
