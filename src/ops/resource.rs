//! The host objects the product manages, each described once: how its
//! fields are normalized for comparison (the fields the host writes itself
//! left out, reference §12.4), how it is observed on the host, and how it is
//! removed. Apply records the normalized desired fields and the observed
//! digest in the ledger; rollback and drift compare the same fields.

use crate::host::{HostClient, HostError, HostErrorKind};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A kind of host object in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Group,
    Channel,
    Account,
    /// The probe user's gateway key bound to the group.
    UserKey,
    /// The probe user's subscription to the group.
    Subscription,
}

/// The field name prefix of a channel price (`price <platform>/<model>`).
pub const PRICE_PREFIX: &str = "price ";

/// Normalized, comparable fields of an object.
pub type Fields = BTreeMap<String, Value>;

/// Where the probe user is, for the kinds that hang off it.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub user_id: i64,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Group => "group",
            Resource::Channel => "channel",
            Resource::Account => "account",
            Resource::UserKey => "user_key",
            Resource::Subscription => "subscription",
        }
    }

    pub fn parse(s: &str) -> Option<Resource> {
        Some(match s {
            "group" => Resource::Group,
            "channel" => Resource::Channel,
            "account" => Resource::Account,
            "user_key" => Resource::UserKey,
            "subscription" => Resource::Subscription,
            _ => return None,
        })
    }

    /// The order a rollback removes objects in (reference §11.4): keys
    /// first, the group last, so nothing ever points at a deleted object.
    pub fn removal_rank(self) -> u8 {
        match self {
            Resource::UserKey => 0,
            Resource::Subscription => 1,
            Resource::Channel => 2,
            Resource::Account => 3,
            Resource::Group => 4,
        }
    }

    /// The fields we own, from either our request body or the host's
    /// representation (they share field names). Secrets and everything the
    /// host writes itself (ids, timestamps, counters, status, the host's own
    /// `extra` keys) are left out.
    pub fn fields(self, v: &Value) -> Fields {
        let mut f = Fields::new();
        let mut take = |k: &str, x: Option<&Value>| {
            if let Some(x) = x.filter(|x| !x.is_null()) {
                f.insert(k.to_string(), x.clone());
            }
        };
        match self {
            Resource::Group => {
                for k in [
                    "name",
                    "description",
                    "platform",
                    "subscription_type",
                    "rate_multiplier",
                    "daily_limit_usd",
                    "weekly_limit_usd",
                    "monthly_limit_usd",
                ] {
                    take(k, v.get(k).map(number_as_f64).as_ref());
                }
                // Fields written only on some versions or only when set:
                // present when they restrict something, so an older plan
                // that did not send them compares equal to the default.
                if v.get("is_exclusive").and_then(Value::as_bool) == Some(true) {
                    f.insert("is_exclusive".into(), json!(true));
                }
                if let Some(list) = ["model_allowlist", "models_list_config"]
                    .iter()
                    .find_map(|k| v.get(*k))
                    .filter(|l| l.get("enabled").and_then(Value::as_bool) == Some(true))
                {
                    let mut models: Vec<&str> = list
                        .get("models")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    models.sort_unstable();
                    f.insert("model list".into(), json!(models));
                }
                insert_prices(&mut f, "group ", v.get("model_pricing"));
            }
            Resource::Channel => {
                for k in ["name", "billing_model_source", "restrict_models"] {
                    take(k, v.get(k));
                }
                take("group_ids", v.get("group_ids").map(sorted_ids).as_ref());
                // One field per (platform, model): `price deepseek/deepseek-flash`
                // = [input, output] USD per token, so a diff names the price
                // that changed.
                insert_prices(&mut f, "", v.get("model_pricing"));
            }
            Resource::Account => {
                for k in ["name", "platform", "type"] {
                    take(k, v.get(k));
                }
                take("group_ids", v.get("group_ids").map(sorted_ids).as_ref());
                take("base_url", v.pointer("/credentials/base_url"));
                take("model_mapping", v.pointer("/credentials/model_mapping"));
                take(
                    "marker",
                    v.pointer(&format!("/extra/{}", super::import::MARKER_KEY)),
                );
            }
            Resource::UserKey => {
                take("name", v.get("name"));
                take("group_id", v.get("group_id"));
            }
            Resource::Subscription => {
                take("group_id", v.get("group_id"));
            }
        }
        f
    }

    /// A stable digest of the normalized fields.
    pub fn digest(self, v: &Value) -> String {
        digest_fields(&self.fields(v))
    }

    /// Reads the object from the host: `None` when it is gone (deleted,
    /// soft-deleted, revoked).
    pub async fn observe(
        self,
        c: &HostClient,
        remote_id: &str,
        owner: Option<Owner>,
    ) -> Result<Option<Value>, HostError> {
        let gone = |e: &HostError| e.kind == HostErrorKind::NotFound;
        let get = |path: String| async move {
            match c.admin_get(&path).await {
                Ok(v) => Ok(Some(v)),
                Err(e) if gone(&e) => Ok(None),
                Err(e) => Err(e),
            }
        };
        match self {
            Resource::Group => get(format!("/api/v1/admin/groups/{remote_id}")).await,
            Resource::Channel => get(format!("/api/v1/admin/channels/{remote_id}")).await,
            Resource::Account => Ok(get(format!("/api/v1/admin/accounts/{remote_id}"))
                .await?
                .filter(|a| a.get("deleted_at").is_none_or(Value::is_null))),
            Resource::UserKey => {
                let Some(o) = owner else { return Ok(None) };
                let v = c
                    .admin_get(&format!(
                        "/api/v1/admin/users/{}/api-keys?page_size=1000",
                        o.user_id
                    ))
                    .await?;
                let found = items(&v)
                    .find(|k| id_str(k).as_deref() == Some(remote_id))
                    .map(|k| {
                        let mut k = k.clone();
                        if let Some(o) = k.as_object_mut() {
                            o.remove("key");
                        }
                        k
                    });
                Ok(found)
            }
            Resource::Subscription => {
                let Some(o) = owner else { return Ok(None) };
                let v = c
                    .admin_get(&format!("/api/v1/admin/users/{}/subscriptions", o.user_id))
                    .await?;
                let found = items(&v)
                    .find(|s| id_str(s).as_deref() == Some(remote_id))
                    .filter(|s| {
                        s.get("status").and_then(Value::as_str) != Some("revoked")
                            && s.get("deleted_at").is_none_or(Value::is_null)
                    })
                    .cloned();
                Ok(found)
            }
        }
    }

    /// Removes the object from the host. Removing what is already gone
    /// succeeds. A user key is deleted by the probe user (`user_jwt`);
    /// without one it is unbound from the group instead.
    pub async fn remove(
        self,
        c: &HostClient,
        remote_id: &str,
        user_jwt: Option<&crate::secrets::Secret>,
    ) -> Result<String, HostError> {
        let r = match self {
            Resource::Group => c
                .admin("DELETE", &format!("/api/v1/admin/groups/{remote_id}"), None, None)
                .await
                .map(|_| "group deleted"),
            Resource::Channel => c
                .admin(
                    "DELETE",
                    &format!("/api/v1/admin/channels/{remote_id}"),
                    None,
                    None,
                )
                .await
                .map(|_| "channel deleted"),
            Resource::Account => c
                .admin(
                    "DELETE",
                    &format!("/api/v1/admin/accounts/{remote_id}"),
                    None,
                    None,
                )
                .await
                .map(|_| "account deleted (a soft delete on the host)"),
            Resource::Subscription => c
                .admin(
                    "POST",
                    &format!("/api/v1/admin/subscriptions/{remote_id}/revoke"),
                    Some(&json!({})),
                    None,
                )
                .await
                .map(|_| "subscription revoked"),
            Resource::UserKey => match user_jwt {
                Some(jwt) => c
                    .user_call(jwt, "DELETE", &format!("/api/v1/keys/{remote_id}"), None, None)
                    .await
                    .map(|_| "probe user's key deleted"),
                None => c
                    .admin(
                        "PUT",
                        &format!("/api/v1/admin/api-keys/{remote_id}"),
                        Some(&json!({"group_id": 0})),
                        None,
                    )
                    .await
                    .map(|_| "probe user's key unbound from the group (the probe user could not sign in to delete it)"),
            },
        };
        match r {
            Ok(what) => Ok(what.to_string()),
            Err(e) if e.kind == HostErrorKind::NotFound => {
                Ok(format!("{} {remote_id} was already gone", self.as_str()))
            }
            Err(e) => Err(e),
        }
    }
}

/// Fields that differ: (field, wanted, observed), as compact JSON.
/// One field per (platform, model) of a price card list.
fn insert_prices(f: &mut Fields, prefix: &str, cards: Option<&Value>) {
    for p in cards.and_then(Value::as_array).into_iter().flatten() {
        let platform = p.get("platform").and_then(Value::as_str).unwrap_or("");
        for m in p
            .get("models")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            f.insert(
                format!("{prefix}{PRICE_PREFIX}{platform}/{m}"),
                json!([
                    p.get("input_price").map(number_as_f64),
                    p.get("output_price").map(number_as_f64)
                ]),
            );
        }
    }
}

pub fn diff(desired: &Fields, observed: &Fields) -> Vec<(String, String, String)> {
    let show = |v: Option<&Value>| v.map(Value::to_string).unwrap_or_else(|| "—".into());
    desired
        .keys()
        .chain(observed.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| desired.get(*k) != observed.get(*k))
        .map(|k| (k.clone(), show(desired.get(k)), show(observed.get(k))))
        .collect()
}

pub fn digest_fields(f: &Fields) -> String {
    let s = serde_json::to_string(f).unwrap_or_default();
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

/// Numbers compared as floats (the host may answer `1` for `1.0`).
fn number_as_f64(v: &Value) -> Value {
    match v.as_f64() {
        Some(x) if v.is_number() => json!(x),
        _ => v.clone(),
    }
}

fn sorted_ids(v: &Value) -> Value {
    let mut ids: Vec<i64> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    ids.sort_unstable();
    json!(ids)
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("items")
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .into_iter()
        .flatten()
}

fn id_str(v: &Value) -> Option<String> {
    v.get("id").and_then(Value::as_i64).map(|i| i.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_written_extra_keys_and_secrets_are_not_part_of_an_account() {
        let sent = json!({"name": "rm-ds-0123456789", "platform": "deepseek", "type": "apikey",
            "group_ids": [7, 3], "credentials": {"api_key": "sk-secret", "base_url": "https://u", "model_mapping": {"m": "m"}},
            "extra": {"relay_manager_marker": "rm:p/ds:01"}});
        let seen = json!({"id": 9, "name": "rm-ds-0123456789", "platform": "deepseek", "type": "apikey",
            "group_ids": [3, 7], "status": "active", "schedulable": true,
            "credentials": {"base_url": "https://u", "model_mapping": {"m": "m"}},
            "extra": {"relay_manager_marker": "rm:p/ds:01", "openai_responses_mode": "auto", "deepseek_balance": 3.2}});
        let (a, b) = (
            Resource::Account.fields(&sent),
            Resource::Account.fields(&seen),
        );
        assert_eq!(diff(&a, &b), vec![]);
        assert_eq!(
            Resource::Account.digest(&sent),
            Resource::Account.digest(&seen)
        );
        assert!(!serde_json::to_string(&a).unwrap().contains("sk-secret"));
    }

    #[test]
    fn a_changed_price_is_named_per_platform_and_model() {
        let sent = json!({"name": "c", "group_ids": [1], "model_pricing": [
            {"platform": "deepseek", "models": ["a", "b"], "input_price": 1e-6, "output_price": 2e-6}]});
        let mut seen = sent.clone();
        seen["model_pricing"][0]["models"] = json!(["a"]);
        seen["model_pricing"]
            .as_array_mut()
            .unwrap()
            .push(json!({"platform": "deepseek", "models": ["b"], "input_price": 1e-6, "output_price": 3e-6}));
        seen["model_pricing"][0]["billing_mode"] = json!("token");
        let d = diff(
            &Resource::Channel.fields(&sent),
            &Resource::Channel.fields(&seen),
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].0, "price deepseek/b");
        assert!(
            d[0].2.contains("3e-6") || d[0].2.contains("0.000003"),
            "{d:?}"
        );
    }

    #[test]
    fn removal_order_puts_keys_first_and_the_group_last() {
        let mut kinds = [
            Resource::Group,
            Resource::Account,
            Resource::UserKey,
            Resource::Channel,
            Resource::Subscription,
        ];
        kinds.sort_by_key(|k| k.removal_rank());
        assert_eq!(
            kinds,
            [
                Resource::UserKey,
                Resource::Subscription,
                Resource::Channel,
                Resource::Account,
                Resource::Group
            ]
        );
    }
}
