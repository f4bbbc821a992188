use crate::{TestApp, PASSWORD};
use provisioning_core::model::Role;

#[tokio::test]
async fn a_fresh_install_sends_everyone_to_setup_and_the_token_creates_one_admin() {
    let app = TestApp::spawn().await;
    let p = app.get("/").await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/setup")));
    let token = app
        .core
        .issue_setup_token_if_needed()
        .await
        .unwrap()
        .unwrap();

    let p = app
        .submit(
            &app.client,
            "/setup",
            &[
                ("token", "wrong"),
                ("username", "root"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("token: is not valid"), "{}", p.body);
    assert_eq!(app.core.store.operator_count().await.unwrap(), 0);

    let p = app
        .submit(
            &app.client,
            "/setup",
            &[
                ("token", &token),
                ("username", "root"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(
        p.body.contains("data-testid=\"error-password\""),
        "{}",
        p.body
    );
    assert!(p.body.contains("value=\"root\""), "the username is kept");

    let p = app
        .submit(
            &app.client,
            "/setup",
            &[
                ("token", &token),
                ("username", "root"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!((p.status, p.location.as_deref()), (303, Some("/")));
    let p = app.get("/").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Welcome, root"));
    // Setup is closed now, and the token cannot make a second admin.
    let other = app.new_client();
    let p = app.get_with(&other, "/setup").await;
    assert_eq!(p.location.as_deref(), Some("/login"));
    let p = app
        .submit(
            &other,
            "/login",
            &[("username", "root"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, 303);
    assert_eq!(app.core.store.operator_count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_wrong_password_is_refused_audited_and_then_throttled() {
    let app = TestApp::spawn().await;
    app.add_operator("alice", Role::Operator).await;
    let p = app
        .submit(
            &app.client,
            "/login",
            &[("username", "alice"), ("password", "not the password")],
        )
        .await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("Wrong username or password."));
    assert!(p.body.contains("value=\"alice\""), "username refilled");
    assert!(
        !p.body.contains("not the password"),
        "password never echoed"
    );
    // Unknown users get the same answer.
    let p = app
        .submit(
            &app.client,
            "/login",
            &[("username", "nobody"), ("password", "x")],
        )
        .await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("Wrong username or password."));
    for _ in 0..4 {
        app.submit(
            &app.client,
            "/login",
            &[("username", "alice"), ("password", "nope")],
        )
        .await;
    }
    let p = app
        .submit(
            &app.client,
            "/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.status, 429, "throttled even with the right password");
    let (audit, _) = app.core.store.audit_page(1, 50).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "session.sign_in" && e.outcome == "denied"));
    assert!(audit
        .iter()
        .any(|e| e.action == "session.sign_in" && e.outcome == "throttled"));
}

#[tokio::test]
async fn sign_in_rotates_the_session_id_and_sign_out_ends_it() {
    let app = TestApp::spawn().await;
    app.add_operator("bob", Role::Viewer).await;
    let r = app
        .client
        .get(format!("{}/login", app.url))
        .send()
        .await
        .unwrap();
    let before: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let csrf = app.csrf(&app.client, "/login").await;
    let r = app
        .client
        .post(format!("{}/login", app.url))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("username", "bob"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let after: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let cookie = after
        .iter()
        .find(|c| c.starts_with("relay_session="))
        .expect("session cookie set on sign-in");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!before.contains(cookie), "session id changes at sign-in");
    assert_eq!(app.get("/hosts").await.status, 200);
    let p = app.submit(&app.client, "/hosts", &[]).await;
    assert_eq!(p.status, 405, "no POST on the list page");
    let csrf = app.csrf(&app.client, "/hosts").await;
    let p = app
        .post_with(&app.client, "/logout", &[("_csrf", &csrf)])
        .await;
    assert_eq!(p.location.as_deref(), Some("/login"));
    assert_eq!(app.get("/hosts").await.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn page_views_write_no_session_and_a_session_touched_a_minute_ago_is_written_again() {
    use tower_sessions::SessionStore as _;
    let app = TestApp::spawn().await;
    app.admin().await;
    let pool = app.core.store.pool();
    let rows = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT id, CAST(expiry_date AS TEXT) FROM tower_sessions",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    };
    let before = rows().await;
    assert_eq!(before.len(), 1, "{before:?}");
    for path in ["/", "/hosts", "/batches"] {
        assert_eq!(app.get(path).await.status, 200, "{path}");
    }
    assert_eq!(rows().await, before, "a page view wrote the session");
    // The same session as last written two minutes ago: the next view
    // writes it again, and its idle expiry moves on.
    let store = tower_sessions_sqlx_store::SqliteStore::new(pool.clone());
    let id = before[0].0.parse().unwrap();
    let mut rec = store.load(&id).await.unwrap().unwrap();
    rec.data
        .insert(app::server::auth::TOUCHED.into(), serde_json::json!(0));
    rec.expiry_date -= time::Duration::minutes(2);
    store.save(&rec).await.unwrap();
    assert_eq!(app.get("/").await.status, 200);
    let after = rows().await;
    assert_eq!(after[0].0, before[0].0);
    // (The store writes the expiry as UTC text, which sorts by time.)
    assert!(after[0].1 > before[0].1, "{after:?} vs {before:?}");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let form = app.host_form("h");
    let p = app
        .post_with(&app.client, "/hosts/new", &crate::pairs(&form))
        .await;
    assert_eq!(p.status, 403);
    assert!(p.body.contains("This form has expired"));
    assert!(app.core.list_hosts().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_viewer_reads_but_every_change_is_refused_on_the_server() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let p = app
        .submit(
            &app.client,
            "/hosts/new",
            &crate::pairs(&app.host_form("h1")),
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let host_id = app.core.list_hosts().await.unwrap()[0].id;
    app.add_operator("vera", Role::Viewer).await;
    let viewer = app.new_client();
    app.sign_in(&viewer, "vera").await;

    // Reading works.
    let p = app.get_with(&viewer, &format!("/hosts/{host_id}")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("data-testid=\"capabilities\""));
    assert!(
        !p.body.contains("data-testid=\"probe\""),
        "no probe button for a viewer"
    );

    // Every mutating operation of the core's table, by the form that asks
    // for it: refused with 403 for a viewer (and an admin operation for an
    // operator), audited under the operation's name, nothing written.
    use provisioning_core::ops::{authz::RULES, Operation as O};
    let form_of = |op: O| -> Option<(String, Vec<(String, String)>)> {
        let act = |a: &str| vec![("action".to_string(), a.to_string())];
        let h = format!("/hosts/{host_id}");
        Some(match op {
            O::Read | O::OperatorList => return None,
            O::TokenManage => ("/tokens".into(), act("create")),
            O::HostCreate => ("/hosts/new".into(), app.host_form("h2")),
            O::HostProbe => (h, act("probe")),
            O::HostComplianceAccept => (h, act("accept_compliance")),
            O::HostAdminKeyObtain => (h, act("obtain_admin_key")),
            O::HostUpdate => (format!("{h}/edit"), app.host_form("renamed")),
            O::HostDelete => (format!("{h}/delete"), vec![("confirm".into(), "h1".into())]),
            O::HostDriftCheck => (format!("{h}/drift"), act("check")),
            O::HostDriftRepair => (format!("{h}/drift"), act("repair")),
            O::HostDriftIgnore => (format!("{h}/drift"), act("ignore")),
            O::HostProtect => (h, act("protect")),
            O::BatchApprove => (
                "/batches/1".into(),
                vec![
                    ("action".into(), "approve".into()),
                    ("purpose".into(), "apply".into()),
                ],
            ),
            O::BatchReview => (
                "/batches/1/review".into(),
                vec![("decision".into(), "accepted".into())],
            ),
            O::PackUpload => ("/packs".into(), vec![("source".into(), "schema: 1".into())]),
            O::BatchPlan => ("/batches/new".into(), vec![("keys".into(), "sk-x".into())]),
            O::BatchApply => ("/batches/1".into(), act("apply")),
            O::BatchRetryFailed => ("/batches/1".into(), act("retry_failed")),
            O::BatchDiscard => ("/batches/1".into(), act("discard")),
            O::BatchRemoveFailed => ("/batches/1".into(), act("remove_failed")),
            O::BatchPauseFailed => ("/batches/1".into(), act("pause_failed")),
            O::BatchResumeFailed => ("/batches/1".into(), act("resume_failed")),
            O::BatchDiagnose => ("/batches/1".into(), act("diagnose")),
            O::BatchRecheck => ("/batches/1".into(), act("readiness_check")),
            O::BatchBalances => ("/batches/1".into(), act("read_balances")),
            O::HostSchedule => (
                h,
                vec![
                    ("action".into(), "schedule".into()),
                    ("job".into(), "probe".into()),
                    ("interval_s".into(), "60".into()),
                ],
            ),
            O::WebhookManage => (
                "/webhooks".into(),
                vec![
                    ("action".into(), "create".into()),
                    ("name".into(), "w".into()),
                    ("url".into(), "http://127.0.0.1:9/h".into()),
                    ("format".into(), "generic".into()),
                ],
            ),
            O::BatchRollback => (
                "/batches/1/rollback".into(),
                vec![("confirm".into(), "1".into())],
            ),
            O::BatchReplaceKey => (
                "/batches/1/replace".into(),
                vec![("new_key".into(), "sk-y".into())],
            ),
            O::OperatorCreate => (
                "/operators".into(),
                vec![
                    ("action".into(), "create".into()),
                    ("username".into(), "mallory".into()),
                    ("password".into(), PASSWORD.into()),
                    ("role".into(), "admin".into()),
                ],
            ),
            O::OperatorUpdate => ("/operators".into(), act("update")),
            O::OperatorResetPassword => ("/operators".into(), act("reset_password")),
            O::OperatorRemove => ("/operators".into(), act("remove")),
        })
    };
    app.add_operator("otto", Role::Operator).await;
    let operator = app.new_client();
    app.sign_in(&operator, "otto").await;
    let history_before = app.core.probe_history(host_id).await.unwrap().len();
    let mut cells = 0;
    for rule in RULES.iter().filter(|r| r.op.mutates()) {
        let Some((path, form)) = form_of(rule.op) else {
            assert_eq!(rule.op, O::OperatorList, "{} has no form", rule.action);
            continue;
        };
        // A reviewer's decision is the one change a viewer may make.
        let mut who = Vec::new();
        if rule.role > Role::Viewer {
            who.push((&viewer, "vera", Role::Viewer));
        }
        if rule.role == Role::Admin {
            who.push((&operator, "otto", Role::Operator));
        }
        for (client, name, role) in who {
            // The caller's own CSRF token, from a page it can read.
            let csrf = app.csrf(client, "/hosts").await;
            let mut f = vec![("_csrf".to_string(), csrf)];
            f.extend(form.clone());
            let p = app.post_with(client, &path, &crate::pairs(&f)).await;
            assert_eq!(p.status, 403, "{role} × {}: {}", rule.action, p.body);
            assert!(
                p.body
                    .contains(&format!("Your role ({role}) cannot do this")),
                "{role} × {}",
                rule.action
            );
            let (audit, _) = app.core.store.audit_page(1, 5).await.unwrap();
            assert!(
                audit
                    .iter()
                    .any(|e| e.actor == name && e.action == rule.action && e.outcome == "denied"),
                "{role} × {} is audited: {audit:?}",
                rule.action
            );
            cells += 1;
        }
    }
    assert!(cells >= 30, "the matrix has its cells ({cells})");
    let hosts = app.core.list_hosts().await.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].name, "h1");
    assert_eq!(
        app.core.probe_history(host_id).await.unwrap().len(),
        history_before
    );
    assert_eq!(app.core.store.operator_count().await.unwrap(), 3);

    // The admin-only page's data is refused by the server function too.
    let p = app.get_with(&viewer, "/operators").await;
    assert!(p.body.contains("This needs the admin role"), "{}", p.body);
    assert!(
        !p.body.contains("data-testid=\"operators\""),
        "operator list not leaked"
    );
    assert!(
        !p.body.contains("data-testid=\"operator-form\""),
        "no form offered that the server would refuse"
    );
}

#[tokio::test]
async fn server_functions_refuse_a_caller_without_a_session() {
    use leptos::server_fn::ServerFn;
    let app = TestApp::spawn().await;
    app.admin().await;
    let r = app
        .new_client()
        .post(format!("{}{}", app.url, app::api::ListHosts::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a refusal, not a server error");
    let body = r.text().await.unwrap();
    assert!(body.contains("unauthorized"), "{body}");
    // Signed in, but without the role: 403.
    app.add_operator("vic", Role::Viewer).await;
    let viewer = app.new_client();
    app.sign_in(&viewer, "vic").await;
    let r = viewer
        .post(format!("{}{}", app.url, app::api::ListOperators::PATH))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test]
async fn the_language_follows_the_browser_then_the_cookie() {
    let app = TestApp::spawn().await;
    app.add_operator("zed", Role::Viewer).await;
    let r = app
        .client
        .get(format!("{}/login", app.url))
        .header("accept-language", "zh-CN,zh;q=0.9")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(body.contains("lang=\"zh-CN\""));
    assert!(body.contains("登录"));
    let p = app.get("/lang?to=en").await;
    assert_eq!(p.status, 303);
    let r = app
        .client
        .get(format!("{}/login", app.url))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Sign in"));
}

#[tokio::test]
async fn health_answers_without_a_session() {
    let app = TestApp::spawn().await;
    let p = app.get("/healthz").await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("\"status\":\"ok\""));
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_even_with_a_valid_token() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let post = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let csrf = app.csrf(&app.client, "/operators").await;
            let mut req = app.client.post(format!("{}/operators", app.url)).form(&[
                ("_csrf", csrf.as_str()),
                ("action", "create"),
                ("username", "mallory"),
                ("password", PASSWORD),
                ("role", "admin"),
            ]);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(
        post(vec![("origin", "http://evil.example".into())]).await,
        403
    );
    assert_eq!(post(vec![("origin", "null".into())]).await, 403);
    assert_eq!(
        post(vec![("sec-fetch-site", "cross-site".into())]).await,
        403
    );
    assert!(
        app.core
            .store
            .operator_by_name("mallory")
            .await
            .unwrap()
            .is_none(),
        "nothing was created"
    );
    // The dashboard's own page posting to itself goes through.
    let s = post(vec![
        ("origin", app.url.clone()),
        ("sec-fetch-site", "same-origin".into()),
    ])
    .await;
    assert_eq!(s, 303);
    assert!(app
        .core
        .store
        .operator_by_name("mallory")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn pages_carry_a_csp_whose_nonce_is_on_the_hydration_script() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let r = app
        .client
        .get(format!("{}/hosts", app.url))
        .send()
        .await
        .unwrap();
    let csp = r
        .headers()
        .get("content-security-policy")
        .expect("a CSP header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a nonce")
        .to_string();
    assert!(nonce.len() >= 16, "{nonce}");
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the header's nonce"
    );
    // Another response, another nonce.
    let again = app
        .client
        .get(format!("{}/hosts", app.url))
        .send()
        .await
        .unwrap();
    let csp2 = again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(csp, csp2);
}

/// Signs `name` in with `password` on a fresh client; `None` when refused.
async fn signed_in(app: &TestApp, name: &str, password: &str) -> Option<reqwest::Client> {
    let c = app.new_client();
    let p = app
        .submit(&c, "/login", &[("username", name), ("password", password)])
        .await;
    (p.status == 303).then_some(c)
}

async fn operator_id(app: &TestApp, name: &str) -> String {
    app.core
        .store
        .operator_by_name(name)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

#[tokio::test]
async fn an_admin_resets_a_password_and_the_operators_sessions_end() {
    let app = TestApp::spawn().await;
    app.admin().await;
    app.add_operator("vera", Role::Viewer).await;
    let vera = signed_in(&app, "vera", PASSWORD).await.unwrap();
    assert_eq!(app.get_with(&vera, "/hosts").await.status, 200);
    let id = operator_id(&app, "vera").await;
    let short = app
        .submit(
            &app.client,
            "/operators",
            &[
                ("action", "reset_password"),
                ("id", &id),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 400);
    assert!(short.body.contains("at least 12 characters"));
    let p = app
        .submit(
            &app.client,
            "/operators",
            &[
                ("action", "reset_password"),
                ("id", &id),
                ("password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        app.get_with(&vera, "/hosts").await.location.as_deref(),
        Some("/login"),
        "her session ended"
    );
    assert!(
        signed_in(&app, "vera", PASSWORD).await.is_none(),
        "the old password is gone"
    );
    assert!(signed_in(&app, "vera", "a brand new password")
        .await
        .is_some());
    // An admin resets nobody's password from a viewer's session, nor their own here.
    let vera = signed_in(&app, "vera", "a brand new password")
        .await
        .unwrap();
    let root = operator_id(&app, "root").await;
    let p = app
        .submit(
            &vera,
            "/operators",
            &[
                ("action", "reset_password"),
                ("id", &root),
                ("password", "taken over password"),
            ],
        )
        .await;
    assert_eq!(p.status, 403);
    let p = app
        .submit(
            &app.client,
            "/operators",
            &[
                ("action", "reset_password"),
                ("id", &root),
                ("password", "another password 1"),
            ],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p
        .body
        .contains("change your own password on your account page"));
    let (audit, _) = app.core.store.audit_page(1, 50).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "operator.password_reset"
        && e.outcome == "ok"
        && e.target == "operator:vera"));
    assert!(audit
        .iter()
        .any(|e| e.action == "operator.password_reset" && e.outcome == "denied"));
    for e in &audit {
        assert!(
            !e.detail.contains("a brand new password"),
            "no password in the audit log"
        );
    }
}

#[tokio::test]
async fn an_operator_changes_their_own_password_and_stays_signed_in_there_only() {
    let app = TestApp::spawn().await;
    app.add_operator("ann", Role::Operator).await;
    let here = signed_in(&app, "ann", PASSWORD).await.unwrap();
    let elsewhere = signed_in(&app, "ann", PASSWORD).await.unwrap();
    let page = app.get_with(&here, "/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-testid=\"password-form\""));
    let wrong = app
        .submit(
            &here,
            "/account",
            &[
                ("current_password", "not my password"),
                ("new_password", "my new password 1"),
                ("confirm_password", "my new password 1"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong
            .body
            .contains("data-testid=\"error-current_password\""),
        "{}",
        wrong.body
    );
    let mismatch = app
        .submit(
            &here,
            "/account",
            &[
                ("current_password", PASSWORD),
                ("new_password", "my new password 1"),
                ("confirm_password", "my new password 2"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert!(mismatch.body.contains("does not match the new password"));
    assert!(
        signed_in(&app, "ann", PASSWORD).await.is_some(),
        "nothing changed yet"
    );
    let ok = app
        .submit(
            &here,
            "/account",
            &[
                ("current_password", PASSWORD),
                ("new_password", "my new password 1"),
                ("confirm_password", "my new password 1"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let back = app.get_with(&here, "/account").await;
    assert_eq!(back.status, 200, "this session carries on");
    assert!(back.body.contains("Password changed"));
    assert_eq!(
        app.get_with(&elsewhere, "/hosts").await.location.as_deref(),
        Some("/login")
    );
    assert!(signed_in(&app, "ann", "my new password 1").await.is_some());
    assert!(signed_in(&app, "ann", PASSWORD).await.is_none());
}

#[tokio::test]
async fn a_removed_operator_is_signed_out_for_good_and_their_name_stays_taken() {
    let app = TestApp::spawn().await;
    app.admin().await;
    app.add_operator("otto", Role::Operator).await;
    let otto = signed_in(&app, "otto", PASSWORD).await.unwrap();
    let id = operator_id(&app, "otto").await;
    let p = app
        .submit(
            &app.client,
            "/operators",
            &[("action", "remove"), ("id", &id)],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("tick the box"));
    let root = operator_id(&app, "root").await;
    let p = app
        .submit(
            &app.client,
            "/operators",
            &[("action", "remove"), ("id", &root), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 400, "not yourself");
    let p = app
        .submit(
            &app.client,
            "/operators",
            &[("action", "remove"), ("id", &id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(
        app.get_with(&otto, "/hosts").await.location.as_deref(),
        Some("/login")
    );
    assert!(signed_in(&app, "otto", PASSWORD).await.is_none());
    let list = app.get("/operators").await;
    assert!(
        !list.body.contains("data-username=\"otto\""),
        "gone from the list"
    );
    let again = app
        .submit(
            &app.client,
            "/operators",
            &[
                ("action", "create"),
                ("username", "otto"),
                ("password", "a fresh password 1"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("existed and was removed"));
    let p = app
        .submit(
            &app.client,
            "/operators",
            &[("action", "remove"), ("id", &id), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, 404, "already removed");
}

#[tokio::test]
async fn guessing_the_current_password_on_the_account_page_is_throttled() {
    let app = TestApp::spawn().await;
    app.add_operator("gus", Role::Operator).await;
    let c = signed_in(&app, "gus", PASSWORD).await.unwrap();
    let change = |current: &'static str| {
        let (app, c) = (&app, &c);
        async move {
            app.submit(
                c,
                "/account",
                &[
                    ("current_password", current),
                    ("new_password", "a new password 12"),
                    ("confirm_password", "a new password 12"),
                ],
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(change("a wrong guess").await.status, 400);
    }
    let p = change(PASSWORD).await;
    assert_eq!(
        p.status, 429,
        "even the right one, after five wrong guesses"
    );
    assert!(p.body.contains("try again later"));
    assert!(
        signed_in(&app, "gus", PASSWORD).await.is_some(),
        "unchanged"
    );
}

/// The server functions that need more than reading, from one table: each
/// refuses a viewer and an operator (their operation is an admin's) with
/// the role's sentence and no data; a source scan keeps the table whole.
#[tokio::test]
async fn server_functions_beyond_reading_refuse_a_lesser_role() {
    use leptos::server_fn::ServerFn;
    use provisioning_core::ops::Operation as O;
    let table: &[(&str, O)] = &[
        (<app::api::ListOperators as ServerFn>::PATH, O::OperatorList),
        (<app::api::ListTokens as ServerFn>::PATH, O::TokenManage),
    ];
    // Every `require(` of an operation other than reading is in the table.
    let src = include_str!("../../src/api.rs");
    let guarded = src
        .matches("auth::require(provisioning_core::ops::Operation::")
        .count()
        - src
            .matches("auth::require(provisioning_core::ops::Operation::Read)")
            .count();
    assert_eq!(
        guarded,
        table.len(),
        "a guarded server function is missing from the table"
    );
    let app = TestApp::spawn().await;
    app.admin().await;
    app.add_operator("vera", Role::Viewer).await;
    app.add_operator("otto", Role::Operator).await;
    for (name, role) in [("vera", Role::Viewer), ("otto", Role::Operator)] {
        let client = app.new_client();
        app.sign_in(&client, name).await;
        for (path, op) in table {
            let r = client
                .post(format!("{}{path}", app.url))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert_eq!(status, 403, "{role} × {path}: {body}");
            assert!(
                body.contains(&format!("you are {role}")),
                "{role} × {} ({path}): {status} {body}",
                op.action()
            );
            assert!(
                !body.contains("root"),
                "no operator data for {role}: {body}"
            );
        }
    }
    // The admin gets the data.
    let r = app
        .client
        .post(format!("{}{}", app.url, table[0].0))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("root"));
}
