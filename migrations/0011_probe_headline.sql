-- The finding a probe's headline comes from (its code and the host's own
-- words), so lists can write the headline in the reader's language.
ALTER TABLE host_probes ADD COLUMN headline_code TEXT NOT NULL DEFAULT '';
ALTER TABLE host_probes ADD COLUMN headline_detail TEXT NOT NULL DEFAULT '';
