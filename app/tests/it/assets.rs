use crate::TestApp;

/// The front end's files (content-hashed names) are served from the files
/// the build compressed, and cached for a year; the pages link the hashed
/// stylesheet and load no page data into the browser (islands only).
#[tokio::test]
async fn hashed_assets_are_precompressed_and_immutable() {
    let app = TestApp::spawn().await;
    let pkg = app.dir.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("dashboard.0123abcd.js"), "export default 1;").unwrap();
    std::fs::write(pkg.join("dashboard.0123abcd.js.br"), b"brotli bytes").unwrap();
    std::fs::write(pkg.join("dashboard.0123abcd.js.gz"), b"gzip bytes").unwrap();
    let get = |enc: &'static str| {
        app.client
            .get(format!("{}/pkg/dashboard.0123abcd.js", app.url))
            .header("accept-encoding", enc)
            .send()
    };
    let br = get("gzip, br").await.unwrap();
    assert_eq!(br.status(), 200);
    assert_eq!(br.headers()["content-encoding"], "br");
    assert_eq!(
        br.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(br.bytes().await.unwrap().as_ref(), b"brotli bytes");
    let gz = get("gzip").await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.bytes().await.unwrap().as_ref(), b"gzip bytes");
    let plain = get("identity").await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await.unwrap(), "export default 1;");
    let missing = app
        .client
        .get(format!("{}/pkg/nothing.js", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let login = app.get("/login").await;
    assert!(login.body.contains("href=\"/pkg/dashboard.css\""));
    assert!(
        !login.body.contains("__RESOLVED_RESOURCES["),
        "no hydration data for pages outside islands: {}",
        login.body
    );
}
