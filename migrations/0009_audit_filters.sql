-- The audit log is filtered by who, what and how it ended, newest first:
-- each filter walks its own index instead of the whole log, and the
-- filter menus read the distinct values from the same indexes.
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_outcome ON audit_log (outcome, id);
