//! Integration tests: the real router served on 127.0.0.1:0 with a fresh
//! SQLite file, talking to a fake Sub2API host over HTTP.

mod api;
mod assets;
mod auth;
mod cli;
mod crash;
mod hosts;
mod imports;
mod readme;
mod rotate;
mod scheduler;
mod secrets;

use app::server::config::Config;
use app::server::state::AppState;
use fakehost::{FakeHost, FakeHostConfig};
use provisioning_core::model::Role;
use provisioning_core::ops::Core;
use provisioning_core::secrets::{Cipher, MasterKey, Secret};
use provisioning_core::store::Store;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use tower_sessions_sqlx_store::SqliteStore;

pub const PASSWORD: &str = "correct horse battery staple";

/// Everything the server logged, for the secret canary test.
pub fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = BufWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        buf
    })
    .clone()
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fake host as the core registers it (admin key, the fake's probe user).
pub fn host_input(host: &FakeHost, name: &str) -> provisioning_core::model::HostInput {
    provisioning_core::model::HostInput {
        name: name.into(),
        base_url: host.url(),
        auth_kind: "api_key".into(),
        admin_api_key: host.admin_api_key(),
        probe_user_email: "probe@example.com".into(),
        probe_user_password: "probe-password-1".into(),
        ..Default::default()
    }
}

/// The core a `dashboard` process opens in `dir` (its database and the
/// master key in `master.key`).
pub async fn open_data_dir(dir: &std::path::Path) -> Core {
    let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
    Core {
        store: Store::open(&dir.join("dashboard.db")).await.unwrap(),
        cipher: Cipher::new(&MasterKey::parse(&key).unwrap(), &[]),
    }
    .with_keyring()
    .await
    .unwrap()
}

/// The scrape token of every test server's `/metrics`.
pub const METRICS_TOKEN: &str = "test-metrics-scrape-token";

pub struct TestApp {
    pub url: String,
    pub client: reqwest::Client,
    pub core: Core,
    pub host: FakeHost,
    pub dir: tempfile::TempDir,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(FakeHostConfig::default()).await
    }

    pub async fn spawn_with(host_cfg: FakeHostConfig) -> TestApp {
        log_buffer();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("app.db")).await.unwrap();
        let core = Core {
            store,
            cipher: Cipher::new(&MasterKey::generate(), &[]),
        };
        let sessions = SqliteStore::new(core.store.pool().clone());
        sessions.migrate().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::local(dir.path(), addr);
        config.metrics_token = Some(Secret::new(METRICS_TOKEN));
        let state = AppState::new(core.clone(), config);
        let router = app::server::router::build_router(state, sessions);
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let host = FakeHost::start(host_cfg).await;
        TestApp {
            url: format!("http://{addr}"),
            client,
            core,
            host,
            dir,
        }
    }

    /// A fresh browser (its own cookie jar) against the same server.
    pub fn new_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub async fn get_with(&self, client: &reqwest::Client, path: &str) -> Page {
        let r = client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        page(r).await
    }

    pub async fn get(&self, path: &str) -> Page {
        self.get_with(&self.client, path).await
    }

    /// The CSRF token of the form on `path`.
    pub async fn csrf(&self, client: &reqwest::Client, path: &str) -> String {
        let p = self.get_with(client, path).await;
        let i = p
            .body
            .find("name=\"_csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf on {path}: {}", p.body));
        p.body[i + 20..i + 52].to_string()
    }

    pub async fn post_with(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let r = client
            .post(format!("{}{path}", self.url))
            .form(form)
            .send()
            .await
            .unwrap();
        page(r).await
    }

    /// Posts the form on `path` with its CSRF token.
    pub async fn submit(
        &self,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let csrf = self.csrf(client, path).await;
        let mut f: Vec<(&str, &str)> = vec![("_csrf", &csrf)];
        f.extend_from_slice(form);
        self.post_with(client, path, &f).await
    }

    pub async fn add_operator(&self, name: &str, role: Role) {
        self.core
            .create_operator("test", name, Secret::new(PASSWORD), role)
            .await
            .unwrap();
    }

    /// Signs `client` in as `name`.
    pub async fn sign_in(&self, client: &reqwest::Client, name: &str) {
        let p = self
            .submit(
                client,
                "/login",
                &[("username", name), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.status, 303, "sign-in of {name} failed: {}", p.body);
    }

    /// An admin `root`, signed in on the default client.
    pub async fn admin(&self) {
        self.add_operator("root", Role::Admin).await;
        self.sign_in(&self.client, "root").await;
    }

    pub fn host_form(&self, name: &str) -> Vec<(String, String)> {
        vec![
            ("name".into(), name.into()),
            ("base_url".into(), self.host.url()),
            ("auth_kind".into(), "api_key".into()),
            ("admin_api_key".into(), self.host.admin_api_key()),
            ("probe_user_email".into(), "probe@example.com".into()),
            ("probe_user_password".into(), "probe-password-1".into()),
        ]
    }
}

async fn page(r: reqwest::Response) -> Page {
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Page {
        status,
        location,
        body: r.text().await.unwrap(),
    }
}

pub fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}
