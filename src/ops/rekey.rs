//! Master-key rotation: every sealed value is opened with the current
//! cipher and sealed again with the new one, in one transaction, so the
//! database is either all old or all new. Fingerprints do not change: the
//! fingerprint key lives in the keyring and is only re-sealed.

use super::{aad, Core, OpError};
use crate::secrets::Cipher;
use crate::store::StoreError;
use sqlx::Row;

/// What a rotation re-sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resealed {
    pub host_secrets: usize,
    pub batch_keys: usize,
    pub access_keys: usize,
    pub keyring: usize,
    pub webhooks: usize,
}

impl Resealed {
    pub fn total(&self) -> usize {
        self.host_secrets + self.batch_keys + self.access_keys + self.keyring + self.webhooks
    }
}

fn db(e: sqlx::Error) -> OpError {
    OpError::Store(StoreError::from(e))
}

impl Core {
    /// Re-seals every secret with `to` (which must carry the same
    /// fingerprint key), in one transaction. Returns what it re-sealed.
    pub async fn reseal_all(&self, to: &Cipher) -> Result<Resealed, OpError> {
        let mut n = Resealed::default();
        let mut tx = self.store.pool().begin().await.map_err(db)?;
        let from = &self.cipher;
        let again = |sealed: &str, aad: &str| -> Result<String, OpError> {
            Ok(to.seal(&from.open(sealed, aad)?, aad))
        };
        for r in
            sqlx::query("SELECT id, uid, admin_secret_sealed, probe_password_sealed FROM hosts")
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
        {
            let (id, uid): (i64, String) = (r.get(0), r.get(1));
            let admin = again(&r.get::<String, _>(2), &aad::host_admin(&uid))?;
            let probe = match r.get::<Option<String>, _>(3) {
                Some(p) => Some(again(&p, &aad::host_probe(&uid))?),
                None => None,
            };
            sqlx::query(
                "UPDATE hosts SET admin_secret_sealed = ?, probe_password_sealed = ? WHERE id = ?",
            )
            .bind(admin)
            .bind(probe)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            n.host_secrets += 1;
        }
        for r in sqlx::query(
            "SELECT k.id, b.uid, k.fingerprint, k.sealed FROM batch_keys k JOIN batches b ON b.id = k.batch_id",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
        {
            let (id, uid, fp): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
            let s = again(&r.get::<String, _>(3), &aad::batch_key(&uid, &fp))?;
            sqlx::query("UPDATE batch_keys SET sealed = ? WHERE id = ?")
                .bind(s)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            n.batch_keys += 1;
        }
        for r in sqlx::query("SELECT id, host_id, group_name, sealed FROM access_keys")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
        {
            let (id, host, group): (i64, i64, String) = (r.get(0), r.get(1), r.get(2));
            let s = again(&r.get::<String, _>(3), &aad::access_key(host, &group))?;
            sqlx::query("UPDATE access_keys SET sealed = ? WHERE id = ?")
                .bind(s)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            n.access_keys += 1;
        }
        for r in sqlx::query("SELECT id, name, url_sealed, secret_sealed FROM webhooks")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
        {
            let (id, name): (i64, String) = (r.get(0), r.get(1));
            let url = again(&r.get::<String, _>(2), &aad::webhook(&name, "url"))?;
            let secret = again(&r.get::<String, _>(3), &aad::webhook(&name, "secret"))?;
            sqlx::query("UPDATE webhooks SET url_sealed = ?, secret_sealed = ? WHERE id = ?")
                .bind(url)
                .bind(secret)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            n.webhooks += 1;
        }
        for r in sqlx::query("SELECT name, sealed FROM keyring")
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?
        {
            let name: String = r.get(0);
            let s = again(&r.get::<String, _>(1), &aad::keyring(&name))?;
            sqlx::query("UPDATE keyring SET sealed = ?, updated_at_ms = ? WHERE name = ?")
                .bind(s)
                .bind(crate::store::now_ms())
                .bind(&name)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            n.keyring += 1;
        }
        sqlx::query(
            "INSERT INTO audit_log (at_ms, actor, action, target, outcome, detail) VALUES (?, 'cli', 'secrets.rotate', 'master_key', 'ok', ?)",
        )
        .bind(crate::store::now_ms())
        .bind(format!(
            "re-sealed {} values ({} hosts, {} batch keys, {} access keys, {} webhooks, {} keyring) from key {} to key {}",
            n.total(),
            n.host_secrets,
            n.batch_keys,
            n.access_keys,
            n.webhooks,
            n.keyring,
            from.current_key_id(),
            to.current_key_id()
        ))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(n)
    }
}
