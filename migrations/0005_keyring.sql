-- Keys the product keeps itself, sealed with the master key. `fingerprint`
-- is the HMAC key of key fingerprints (and so of account names and
-- markers): kept here, it survives a master-key rotation.
CREATE TABLE keyring (
    name          TEXT    PRIMARY KEY,
    sealed        TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
