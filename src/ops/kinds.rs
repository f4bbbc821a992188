//! How the apply manages each kind of host object: one implementation of
//! [`Managed`] per kind — the object the plan wants, how to find the one a
//! lost answer may have created (by marker, then by managed name), how to
//! write it, and how to check what the host shows. The journal in
//! `apply.rs` runs every kind through the same steps; [`Resource`] holds
//! what rollback and drift need of the same kinds (normalized fields,
//! observe, remove).

use super::apply::{Ctx, StepFail};
use super::import::{
    account_marker, account_name, find_account, find_named, MANAGED_BY, MARKER_KEY,
};
use super::resource::{Owner, Resource};
use super::Core;
use crate::host::{HostClient, HostError, LoginOutcome};
use crate::model::{AccessMode, Action, StepErrorKind, StepKind};
use crate::secrets::Secret;
use crate::store::{AccessWrite, StepRow};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};

/// What `write` or `find` got back from the host.
pub(super) struct Written {
    pub id: i64,
    /// The object as the host shows it, when the call answered with it
    /// (else it is read back by id).
    pub observed: Option<Value>,
    /// The probe-user key to store with the result.
    pub access: Option<AccessWrite>,
    /// Evidence to show instead of the read-back (e.g. a masked key).
    pub note: Option<String>,
    /// The object is there but not ours (kept, never recorded as ours).
    pub unmanaged: bool,
}

/// One kind of host object as the apply manages it.
pub(super) trait Managed: Sync {
    fn resource(&self) -> Resource;

    /// The object the plan wants, as the request body.
    fn desired(&self, core: &Core, ctx: &Ctx, s: &StepRow, gid: i64) -> Result<Value, StepFail>;

    /// The object a step may have created, found on the host.
    fn find<'a>(
        &'a self,
        core: &'a Core,
        ctx: &'a Ctx,
        s: &'a StepRow,
        gid: i64,
    ) -> BoxFuture<'a, Result<Option<Written>, HostError>>;

    /// Creates (or, for a planned update, updates) the object.
    fn write<'a>(
        &'a self,
        core: &'a Core,
        ctx: &'a Ctx,
        s: &'a StepRow,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Written, StepFail>>;

    /// Whether the object the host shows is the one wanted. A mismatch is a
    /// read-back failure of an object that exists.
    fn verify(&self, ctx: &Ctx, id: i64, body: &Value, back: &Value) -> Result<(), StepFail> {
        let _ = (ctx, id, body, back);
        Ok(())
    }
}

/// The implementation for a step kind, when it manages a host object.
pub(super) fn managed(kind: StepKind) -> Option<&'static dyn Managed> {
    Some(match kind {
        StepKind::Group => &Group,
        StepKind::Channel => &Channel,
        StepKind::Account => &Account,
        StepKind::UserKey => &UserKey,
        StepKind::Subscription => &Subscription,
        _ => return None,
    })
}

struct Group;
struct Channel;
struct Account;
struct UserKey;
struct Subscription;

impl Managed for Group {
    fn resource(&self) -> Resource {
        Resource::Group
    }

    fn desired(&self, _: &Core, ctx: &Ctx, _: &StepRow, _: i64) -> Result<Value, StepFail> {
        let plan = &ctx.plan;
        let sub = plan.mode == AccessMode::Subscription;
        let t = ctx
            .pack
            .providers
            .get(&plan.provider_key)
            .ok_or("the provider left the pack")?
            .group
            .clone();
        let mut body = json!({
            "name": plan.group_name,
            "description": format!("{MANAGED_BY} ({}/{})", plan.pack_id, plan.provider_key),
            "platform": plan.platform,
            "rate_multiplier": t.rate_multiplier,
            "is_exclusive": plan.shape.is_exclusive,
            "subscription_type": if sub { "subscription" } else { "standard" },
            "daily_limit_usd": t.daily_limit_usd.unwrap_or(0.0),
            "weekly_limit_usd": t.weekly_limit_usd.unwrap_or(0.0),
            "monthly_limit_usd": t.monthly_limit_usd.unwrap_or(0.0),
        });
        // The pack's models, under the field name this version reads (on
        // v0.2.x it is enforced on every request, so it must list them all).
        if let Some(field) = &plan.shape.allowlist_field {
            body[field.as_str()] = json!({"enabled": true, "models": plan.models});
        }
        // Group price cards outrank the channel's: none, so the channel's
        // (the pack's prices) is what the host bills.
        if plan.shape.group_pricing {
            body["model_pricing"] = json!([]);
        }
        Ok(body)
    }

    fn find<'a>(
        &'a self,
        _: &'a Core,
        ctx: &'a Ctx,
        _: &'a StepRow,
        _: i64,
    ) -> BoxFuture<'a, Result<Option<Written>, HostError>> {
        Box::pin(find_ours(
            &ctx.client,
            "/api/v1/admin/groups",
            &ctx.plan.group_name,
            Resource::Group,
        ))
    }

    fn write<'a>(
        &'a self,
        _: &'a Core,
        ctx: &'a Ctx,
        _: &'a StepRow,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Written, StepFail>> {
        Box::pin(async move {
            let id = create_unique(
                &ctx.client,
                "/api/v1/admin/groups",
                body,
                "GROUP_EXISTS",
                &ctx.plan.group_name,
            )
            .await?;
            Ok(written(id))
        })
    }

    fn verify(&self, ctx: &Ctx, id: i64, body: &Value, back: &Value) -> Result<(), StepFail> {
        if back.get("platform").and_then(Value::as_str) == Some(ctx.plan.platform.as_str()) {
            return Ok(());
        }
        Err(StepFail::read_back(
            id,
            format!(
                "read-back: group {id} has platform {}, expected {}",
                back["platform"], ctx.plan.platform
            ),
            body,
            Some(back),
        ))
    }
}

impl Managed for Channel {
    fn resource(&self) -> Resource {
        Resource::Channel
    }

    /// The pack's prices scoped to the platform, and the group.
    fn desired(&self, _: &Core, ctx: &Ctx, _: &StepRow, gid: i64) -> Result<Value, StepFail> {
        let plan = &ctx.plan;
        let provider = ctx
            .pack
            .providers
            .get(&plan.provider_key)
            .ok_or("the provider left the pack")?;
        let pricing: Vec<Value> = plan
            .prices
            .iter()
            .map(|(m, input, output)| {
                let cache = provider.models.get(m).and_then(|pm| {
                    pm.price
                        .cache_read
                        .and_then(|c| ctx.pack.usd_per_token(c, pm.price.currency))
                });
                // Where the host looks prices up by the upstream name after
                // account mapping (v0.2.x), that name is priced too.
                let mut models = vec![m.clone()];
                if plan.shape.price_upstream_names {
                    if let Some(up) = provider.models.get(m).and_then(|pm| pm.upstream.clone()) {
                        if &up != m && !provider.models.contains_key(&up) {
                            models.push(up);
                        }
                    }
                }
                json!({"platform": plan.platform, "models": models, "billing_mode": "token",
                       "input_price": input, "output_price": output, "cache_read_price": cache})
            })
            .collect();
        Ok(json!({
            "name": plan.channel_name,
            "description": format!("{MANAGED_BY} ({}/{})", plan.pack_id, plan.provider_key),
            "group_ids": [gid],
            "model_pricing": pricing,
            "billing_model_source": provider.channel.billing_model_source,
            "restrict_models": provider.channel.restrict_models,
        }))
    }

    fn find<'a>(
        &'a self,
        _: &'a Core,
        ctx: &'a Ctx,
        _: &'a StepRow,
        _: i64,
    ) -> BoxFuture<'a, Result<Option<Written>, HostError>> {
        Box::pin(find_ours(
            &ctx.client,
            "/api/v1/admin/channels",
            &ctx.plan.channel_name,
            Resource::Channel,
        ))
    }

    fn write<'a>(
        &'a self,
        _: &'a Core,
        ctx: &'a Ctx,
        s: &'a StepRow,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Written, StepFail>> {
        Box::pin(async move {
            let c = &ctx.client;
            let existing = s.remote_id.clone().filter(|_| s.action == Action::Update);
            let id = match existing {
                Some(id) => c
                    .admin(
                        "PUT",
                        &format!("/api/v1/admin/channels/{id}"),
                        Some(body),
                        None,
                    )
                    .await
                    .map_err(StepFail::host)?
                    .get("id")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| {
                        StepFail::new(StepErrorKind::MaybeSent, "the host returned no channel id")
                    })?,
                None => {
                    create_unique(
                        c,
                        "/api/v1/admin/channels",
                        body,
                        "CHANNEL_EXISTS",
                        &ctx.plan.channel_name,
                    )
                    .await?
                }
            };
            Ok(written(id))
        })
    }

    fn verify(&self, ctx: &Ctx, id: i64, body: &Value, back: &Value) -> Result<(), StepFail> {
        let scoped = back
            .get("model_pricing")
            .and_then(Value::as_array)
            .is_some_and(|ps| {
                ps.iter().all(|p| {
                    p.get("platform").and_then(Value::as_str) == Some(ctx.plan.platform.as_str())
                })
            });
        if scoped {
            return Ok(());
        }
        Err(StepFail::read_back(
            id,
            format!(
                "read-back: channel {id} pricing is not scoped to {}",
                ctx.plan.platform
            ),
            body,
            Some(back),
        ))
    }
}

/// The create request of an account (the key in clear: it goes to the host
/// only; evidence and the ledger keep redacted and normalized forms).
pub(super) fn account_body(ctx: &Ctx, s: &StepRow, gid: i64) -> Result<Value, StepFail> {
    let plan = &ctx.plan;
    let provider = ctx
        .pack
        .providers
        .get(&plan.provider_key)
        .ok_or("the provider left the pack")?;
    let fp = s.fingerprint.clone().ok_or("no key fingerprint")?;
    let key = ctx
        .keys
        .get(&fp)
        .ok_or("the key is missing from the batch")?;
    let native = plan.platform != "openai";
    let base = if native {
        provider
            .native_base_url
            .clone()
            .unwrap_or_else(|| provider.base_url.clone())
    } else {
        provider.base_url.clone()
    };
    let mapping: serde_json::Map<String, Value> = provider
        .models
        .iter()
        .map(|(m, pm)| {
            (
                m.clone(),
                Value::String(pm.upstream.clone().unwrap_or_else(|| m.clone())),
            )
        })
        .collect();
    let mut credentials =
        json!({"api_key": key.expose(), "base_url": base, "model_mapping": mapping});
    if native {
        credentials["account_mode"] = json!("payg");
        credentials["api_protocol"] = json!("chat_completions");
    }
    let mut extra = json!({MARKER_KEY: s.marker});
    if !native {
        extra["openai_responses_mode"] = json!("force_chat_completions");
    }
    Ok(json!({
        "name": account_name(&plan.provider_key, &fp),
        "notes": format!("{MANAGED_BY}. pack {}/{}, batch {}", plan.pack_id, plan.provider_key, ctx.batch.uid),
        "platform": plan.platform,
        "type": "apikey",
        "credentials": credentials,
        "extra": extra,
        "group_ids": [gid],
        "concurrency": 0,
    }))
}

/// The smoke model must be in the account's mapping as the host shows it.
pub(super) fn check_account(
    ctx: &Ctx,
    id: i64,
    body: &Value,
    back: &Value,
) -> Result<(), StepFail> {
    let has_smoke = back
        .pointer("/credentials/model_mapping")
        .and_then(Value::as_object)
        .is_some_and(|m| m.contains_key(&ctx.plan.smoke_model));
    if has_smoke {
        return Ok(());
    }
    Err(StepFail::read_back(
        id,
        format!(
            "read-back: account {id} mapping lacks the smoke model {}",
            ctx.plan.smoke_model
        ),
        body,
        Some(back),
    ))
}

impl Managed for Account {
    fn resource(&self) -> Resource {
        Resource::Account
    }

    fn desired(&self, _: &Core, ctx: &Ctx, s: &StepRow, gid: i64) -> Result<Value, StepFail> {
        account_body(ctx, s, gid)
    }

    fn find<'a>(
        &'a self,
        _: &'a Core,
        ctx: &'a Ctx,
        s: &'a StepRow,
        _: i64,
    ) -> BoxFuture<'a, Result<Option<Written>, HostError>> {
        Box::pin(async move {
            let fp = s.fingerprint.clone().unwrap_or_default();
            let found = find_account(
                &ctx.client,
                &account_name(&ctx.plan.provider_key, &fp),
                &account_marker(&ctx.plan.pack_id, &ctx.plan.provider_key, &fp),
            )
            .await?;
            Ok(found.and_then(|a| {
                Some(Written {
                    id: a.get("id")?.as_i64()?,
                    observed: Some(a),
                    access: None,
                    note: None,
                    unmanaged: false,
                })
            }))
        })
    }

    fn write<'a>(
        &'a self,
        _: &'a Core,
        ctx: &'a Ctx,
        s: &'a StepRow,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Written, StepFail>> {
        Box::pin(async move {
            let v = ctx
                .client
                .admin(
                    "POST",
                    "/api/v1/admin/accounts",
                    Some(body),
                    Some(&s.idempotency_key),
                )
                .await
                .map_err(StepFail::host)?;
            let id = v.get("id").and_then(Value::as_i64).ok_or_else(|| {
                StepFail::new(StepErrorKind::MaybeSent, "the host returned no account id")
            })?;
            Ok(written(id))
        })
    }

    fn verify(&self, ctx: &Ctx, id: i64, body: &Value, back: &Value) -> Result<(), StepFail> {
        check_account(ctx, id, body, back)
    }
}

impl Managed for UserKey {
    fn resource(&self) -> Resource {
        Resource::UserKey
    }

    fn desired(&self, _: &Core, ctx: &Ctx, _: &StepRow, gid: i64) -> Result<Value, StepFail> {
        Ok(json!({"name": format!("rm-{}", ctx.plan.group_name), "group_id": gid}))
    }

    fn find<'a>(
        &'a self,
        core: &'a Core,
        ctx: &'a Ctx,
        _: &'a StepRow,
        gid: i64,
    ) -> BoxFuture<'a, Result<Option<Written>, HostError>> {
        Box::pin(async move {
            let uid = user_id(ctx).await?;
            let name = format!("rm-{}", ctx.plan.group_name);
            Ok(user_key_on_host(&ctx.client, uid, &name, Some(gid))
                .await?
                .map(|(id, key, seen)| key_written(core, ctx, id, &key, seen, gid)))
        })
    }

    /// The probe user's key for the group: the one of this name when it
    /// exists, else created by the probe user (keys are user-JWT only).
    fn write<'a>(
        &'a self,
        core: &'a Core,
        ctx: &'a Ctx,
        s: &'a StepRow,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Written, StepFail>> {
        Box::pin(async move {
            let gid = body["group_id"].as_i64().unwrap_or(0);
            if let Some(found) = self.find(core, ctx, s, gid).await.map_err(StepFail::host)? {
                return Ok(found);
            }
            let c = &ctx.client;
            let jwt = match c
                .login(&ctx.probe_user.0, &ctx.probe_user.1)
                .await
                .map_err(|err| {
                    StepFail::new(
                        StepErrorKind::Rejected,
                        format!("the probe user could not sign in: {err}"),
                    )
                })? {
                LoginOutcome::Token(t) => t,
                LoginOutcome::Requires2fa => return Err(StepFail::new(
                    StepErrorKind::Rejected,
                    "the probe user has two-factor sign-in; remove it or use another probe user",
                )),
            };
            // An exclusive standard group refuses a user's own binding
            // (GROUP_NOT_ALLOWED): the key is created unbound, then bound by
            // the admin API, which grants the user the group (§6.4).
            let exclusive = ctx.plan.shape.is_exclusive && ctx.plan.mode == AccessMode::SelfService;
            let sent = if exclusive {
                json!({"name": body["name"]})
            } else {
                body.clone()
            };
            c.user_call(
                &jwt,
                "POST",
                "/api/v1/keys",
                Some(&sent),
                Some(&s.idempotency_key),
            )
            .await
            .map_err(StepFail::host)?;
            if exclusive {
                let uid = user_id(ctx).await.map_err(StepFail::host)?;
                let (id, _, _) =
                    user_key_on_host(c, uid, &format!("rm-{}", ctx.plan.group_name), None)
                        .await
                        .map_err(StepFail::host)?
                        .ok_or_else(|| {
                            StepFail::new(
                                StepErrorKind::MaybeSent,
                                "read-back: the new key is not listed for the user yet",
                            )
                        })?;
                c.admin(
                    "PUT",
                    &format!("/api/v1/admin/api-keys/{id}"),
                    Some(&json!({"group_id": gid})),
                    None,
                )
                .await
                .map_err(StepFail::host)?;
            }
            self.find(core, ctx, s, gid)
                .await
                .map_err(StepFail::host)?
                .ok_or_else(|| {
                    StepFail::new(
                        StepErrorKind::MaybeSent,
                        "read-back: the new key is not listed for the user yet",
                    )
                })
        })
    }
}

fn key_written(core: &Core, ctx: &Ctx, id: i64, key: &Secret, seen: Value, gid: i64) -> Written {
    let aad = super::aad::access_key(ctx.batch.host_id, &ctx.plan.group_name);
    Written {
        id,
        observed: Some(seen),
        access: Some(AccessWrite::Put {
            host_id: ctx.batch.host_id,
            group: ctx.plan.group_name.clone(),
            remote_id: id.to_string(),
            sealed: core.cipher.seal(key, &aad),
            masked: key.masked(),
        }),
        note: Some(format!("key {} bound to group {gid}", key.masked())),
        unmanaged: false,
    }
}

impl Managed for Subscription {
    fn resource(&self) -> Resource {
        Resource::Subscription
    }

    fn desired(&self, _: &Core, ctx: &Ctx, _: &StepRow, gid: i64) -> Result<Value, StepFail> {
        let days = ctx
            .pack
            .providers
            .get(&ctx.plan.provider_key)
            .ok_or("the provider left the pack")?
            .group
            .validity_days;
        // The user id is filled in by `write`: it is the host's, not the plan's.
        Ok(json!({"group_id": gid, "validity_days": days, "notes": MANAGED_BY}))
    }

    /// The probe user's active subscription to the group.
    fn find<'a>(
        &'a self,
        _: &'a Core,
        ctx: &'a Ctx,
        _: &'a StepRow,
        gid: i64,
    ) -> BoxFuture<'a, Result<Option<Written>, HostError>> {
        Box::pin(async move {
            let uid = user_id(ctx).await?;
            let v = ctx
                .client
                .admin_get(&format!("/api/v1/admin/users/{uid}/subscriptions"))
                .await?;
            Ok(v.get("items")
                .and_then(Value::as_array)
                .or_else(|| v.as_array())
                .into_iter()
                .flatten()
                .find(|s| {
                    s.get("group_id").and_then(Value::as_i64) == Some(gid)
                        && s.get("status").and_then(Value::as_str) == Some("active")
                })
                .and_then(|s| {
                    Some(Written {
                        id: s.get("id")?.as_i64()?,
                        observed: Some(s.clone()),
                        access: None,
                        note: None,
                        unmanaged: false,
                    })
                }))
        })
    }

    /// Assigning an existing active subscription with the same days and
    /// notes returns it (reference §12.5); a conflict keeps the one there.
    fn write<'a>(
        &'a self,
        core: &'a Core,
        ctx: &'a Ctx,
        s: &'a StepRow,
        body: &'a Value,
    ) -> BoxFuture<'a, Result<Written, StepFail>> {
        Box::pin(async move {
            let uid = user_id(ctx).await.map_err(StepFail::host)?;
            let mut body = body.clone();
            body["user_id"] = json!(uid);
            let gid = body["group_id"].as_i64().unwrap_or(0);
            match ctx
                .client
                .admin(
                    "POST",
                    "/api/v1/admin/subscriptions/assign",
                    Some(&body),
                    None,
                )
                .await
            {
                Ok(v) => {
                    let id = v.get("id").and_then(Value::as_i64).ok_or_else(|| {
                        StepFail::new(
                            StepErrorKind::MaybeSent,
                            "the host returned no subscription id",
                        )
                    })?;
                    Ok(Written {
                        id,
                        observed: Some(v),
                        access: None,
                        note: None,
                        unmanaged: false,
                    })
                }
                // Someone else's subscription (other days or notes): kept
                // as it is, and never recorded as ours.
                Err(err) if err.code == "SUBSCRIPTION_ASSIGN_CONFLICT" => {
                    let found = self.find(core, ctx, s, gid).await.map_err(StepFail::host)?;
                    let mut w = found.ok_or_else(|| StepFail::host(err.clone()))?;
                    w.note = Some(format!(
                        "the user already has an active subscription to this group ({}); kept as it is",
                        err.message
                    ));
                    w.unmanaged = true;
                    Ok(w)
                }
                Err(err) => Err(StepFail::host(err)),
            }
        })
    }
}

fn written(id: i64) -> Written {
    Written {
        id,
        observed: None,
        access: None,
        note: None,
        unmanaged: false,
    }
}

/// A group or channel of this name that is ours, with its representation.
async fn find_ours(
    c: &HostClient,
    path: &str,
    name: &str,
    res: Resource,
) -> Result<Option<Written>, HostError> {
    let Some((id, true)) = find_named(c, path, name).await? else {
        return Ok(None);
    };
    Ok(Some(Written {
        id,
        observed: res.observe(c, &id.to_string(), None).await?,
        access: None,
        note: None,
        unmanaged: false,
    }))
}

/// Creates a uniquely named object (group, channel). A resend after a crash
/// meets the name already taken: the object of that name is adopted only if
/// it is ours (one that appeared since the plan and is not ours is refused).
async fn create_unique(
    c: &HostClient,
    path: &str,
    body: &Value,
    exists_code: &str,
    name: &str,
) -> Result<i64, StepFail> {
    let v = match c.admin("POST", path, Some(body), None).await {
        Ok(v) => v,
        Err(err) if err.code == exists_code => {
            match find_named(c, path, name).await.map_err(StepFail::host)? {
                Some((id, true)) => json!({"id": id}),
                Some((_, false)) => return Err(StepFail::new(StepErrorKind::Rejected, format!(
                    "the host now has an object named `{name}` that this product did not create (it appeared after the plan); rename ours in the pack and re-plan"
                ))),
                None => {
                    return Err(StepFail::new(
                        StepErrorKind::Rejected,
                        format!("{exists_code} but no object named {name}"),
                    ))
                }
            }
        }
        Err(err) => return Err(StepFail::host(err)),
    };
    v.get("id").and_then(Value::as_i64).ok_or_else(|| {
        StepFail::new(
            StepErrorKind::MaybeSent,
            format!("POST {path}: the host returned no id"),
        )
    })
}

/// The probe user's id on the host.
pub(super) async fn user_id(ctx: &Ctx) -> Result<i64, HostError> {
    super::rollback::user_id(&ctx.client, &ctx.probe_user.0).await
}

/// Where the probe user is, for observing the objects that hang off it.
pub(super) async fn owner(ctx: &Ctx) -> Result<Owner, HostError> {
    Ok(Owner {
        user_id: user_id(ctx).await?,
    })
}

/// The probe user's key with this name (and group), as (id, full key,
/// the key's representation without the key).
async fn user_key_on_host(
    c: &HostClient,
    uid: i64,
    name: &str,
    group_id: Option<i64>,
) -> Result<Option<(i64, Secret, Value)>, HostError> {
    let v = c
        .admin_get(&format!("/api/v1/admin/users/{uid}/api-keys?page_size=100"))
        .await?;
    Ok(v.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|k| {
            k.get("name").and_then(Value::as_str) == Some(name)
                && (group_id.is_none() || k.get("group_id").and_then(Value::as_i64) == group_id)
        })
        .and_then(|k| {
            let mut seen = k.clone();
            seen.as_object_mut()?.remove("key");
            Some((
                k.get("id")?.as_i64()?,
                Secret::new(k.get("key")?.as_str()?),
                seen,
            ))
        }))
}
