//! The associated data each sealed value is bound to: the row it belongs
//! to, so a sealed value copied to another row does not open. One place, so
//! sealing, opening and a master-key rotation cannot disagree.

pub(crate) fn host_admin(uid: &str) -> String {
    format!("host/{uid}/admin_secret")
}

pub(crate) fn host_probe(uid: &str) -> String {
    format!("host/{uid}/probe_password")
}

pub(crate) fn batch_key(batch_uid: &str, fingerprint: &str) -> String {
    format!("batch/{batch_uid}/key/{fingerprint}")
}

pub(crate) fn access_key(host_id: i64, group: &str) -> String {
    format!("access/{host_id}/{group}")
}

pub(crate) fn keyring(name: &str) -> String {
    format!("keyring/{name}")
}

/// A webhook's URL (`part` = `url`) or signing secret (`secret`).
pub(crate) fn webhook(name: &str, part: &str) -> String {
    format!("webhook/{}/{part}", name.to_lowercase())
}
