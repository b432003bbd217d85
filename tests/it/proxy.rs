//! Behind a reverse proxy: which client address counts (`server.trusted_proxies`), the
//! routes Divar calls limited to Divar's addresses (`divar.allowed_sources`), and a real
//! nginx in front, run with deploy/nginx.conf as shipped.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use secrecy::SecretString;

use crate::helpers::{Backend, KEY, TestApp, fixture, free_port, spawn_app_with};

const TOKEN: &str = "proxy-test-api-token-0123456789abcdef";

/// A client whose connections come from `source` (any 127/8 address works on loopback).
fn from(source: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(source))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn webhook(client: &reqwest::Client, url: &str, key: &str, forwarded: Option<&str>) -> u16 {
    let mut request = client
        .post(url)
        .header("authorization", key)
        .header("content-type", "application/json")
        .body(fixture("event_new_message_text.json"));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn app(adjust: impl FnOnce(&mut kenar_hook::config::Settings)) -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        s.api.auth_failures_per_minute = 3;
        s.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.api.tokens = vec![SecretString::from(TOKEN)];
        adjust(s);
    })
    .await
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let app = app(|_| {}).await;
    let url = app.url("/webhooks/divar");
    // A client that reaches the port directly cannot pick its address for the limits.
    let direct = from([127, 0, 0, 2]);
    let mut answers = Vec::new();
    for i in 0..5 {
        let spoofed = format!("198.51.100.{i}");
        answers.push(webhook(&direct, &url, "wrong-key", Some(&spoofed)).await);
    }
    assert_eq!(answers, [401, 401, 401, 429, 429]);
    // Through the trusted proxy (127.0.0.1), each client is the address the proxy added.
    let proxy = from([127, 0, 0, 1]);
    for i in 0..5 {
        let client = format!("203.0.113.7, 198.51.100.{i}");
        assert_eq!(webhook(&proxy, &url, "wrong-key", Some(&client)).await, 401);
    }
}

#[tokio::test]
async fn divar_routes_answer_only_the_allowed_sources() {
    let app = app(|s| {
        s.divar.allowed_sources = vec!["127.0.0.3/32".parse().unwrap()];
    })
    .await;
    let outsider = from([127, 0, 0, 2]);
    for path in [
        "/webhooks/divar",
        "/callbacks/divar",
        "/callbacks/divar/dynamic-action",
    ] {
        let response = outsider
            .post(app.url(path))
            .header("authorization", KEY)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
    }
    // Other routes are not Divar's.
    let health = outsider.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let divar = from([127, 0, 0, 3]);
    assert_eq!(
        webhook(&divar, &app.url("/webhooks/divar"), KEY, None).await,
        200
    );
    // Behind the trusted proxy, the address it reports is the one checked.
    let proxy = from([127, 0, 0, 1]);
    let url = app.url("/webhooks/divar");
    assert_eq!(webhook(&proxy, &url, KEY, Some("127.0.0.3")).await, 200);
    assert_eq!(
        webhook(&proxy, &url, KEY, Some("127.0.0.3, 127.0.0.9")).await,
        403
    );
}

/// nginx in front of `app` with deploy/nginx.conf, changed only where its comment says to
/// (the server's name and certificate) and for loopback ports. Killed on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM, so the master stops its workers too (a killed master leaves them running).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn start(upstream: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        // Workers run as an unprivileged user and write their temporary files here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=hooks.example.ir"])
            .args([
                "-keyout",
                &format!("{d}/privkey.pem"),
                "-out",
                &format!("{d}/fullchain.pem"),
            ])
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed for the nginx test (apt-get install openssl)");
        assert!(made.success());
        let port = free_port();
        let shipped =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf"))
                .unwrap();
        let mut site = shipped.clone();
        for (from, to) in [
            ("server 127.0.0.1:8080;", format!("server {upstream};")),
            ("listen 443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
            ("listen [::]:443 ssl;", String::new()),
            (
                "/etc/ssl/kenar-hook/fullchain.pem",
                format!("{d}/fullchain.pem"),
            ),
            (
                "/etc/ssl/kenar-hook/privkey.pem",
                format!("{d}/privkey.pem"),
            ),
        ] {
            assert!(
                site.contains(from),
                "deploy/nginx.conf no longer holds {from:?}"
            );
            site = site.replace(from, &to);
        }
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n\
                 proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
                 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                 include {d}/site.conf;\n}}\n"
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .args([
                "-e",
                &format!("{d}/error.log"),
                "-p",
                &d,
                "-c",
                &format!("{d}/nginx.conf"),
            ])
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx is needed for this test (apt-get install nginx)");
        let mut nginx = Nginx {
            child,
            port,
            _dir: dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(format!("{d}/error.log")).unwrap_or_default();
                panic!("nginx exited with {status}: {log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// A client of the proxy whose connections come from `source`.
    fn client(&self, source: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(IpAddr::from(source))
            .resolve(
                "hooks.example.ir",
                SocketAddr::from(([127, 0, 0, 1], self.port)),
            )
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn url(&self, path: &str) -> String {
        format!("https://hooks.example.ir:{}{path}", self.port)
    }
}

#[tokio::test]
async fn behind_nginx_with_the_shipped_configuration() {
    let app = app(|s| {
        s.divar.allowed_sources = vec![
            "127.0.0.2/32".parse().unwrap(),
            "127.0.0.4/32".parse().unwrap(),
        ];
    })
    .await;
    let nginx = Nginx::start(app.addr);
    let url = nginx.url("/webhooks/divar");

    // The client kenar-hook sees is the one nginx saw, whatever the client claims.
    let client = nginx.client([127, 0, 0, 2]);
    let mut answers = Vec::new();
    for i in 0..5 {
        let spoofed = format!("127.0.0.4, 198.51.100.{i}");
        answers.push(webhook(&client, &url, "wrong-key", Some(&spoofed)).await);
    }
    assert_eq!(answers, [401, 401, 401, 429, 429]);
    let other = nginx.client([127, 0, 0, 4]);
    assert_eq!(webhook(&other, &url, "wrong-key", None).await, 401);

    // The allowlist applies to the address nginx reports.
    let outsider = nginx.client([127, 0, 0, 5]);
    assert_eq!(webhook(&outsider, &url, KEY, Some("127.0.0.2")).await, 403);

    // Bodies: nginx refuses what is over its limit (1 MB), kenar-hook what is over its own
    // (256 KiB) in its own error shape.
    let huge = other
        .post(&url)
        .header("authorization", KEY)
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let large = other
        .post(&url)
        .header("authorization", KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), 413);
    let body: serde_json::Value = large.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");

    // The live stream passes through unbuffered: a delivery shows up at once.
    let reader = nginx.client([127, 0, 0, 6]);
    let response = reader
        .get(nginx.url("/api/v1/stream"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let direct = from([127, 0, 0, 6])
        .get(app.url("/api/v1/stream"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.headers()["x-accel-buffering"], "no");
    drop(direct);
    let mut body = response.bytes_stream();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    assert_eq!(webhook(&other, &url, KEY, None).await, 200);
    let mut seen = String::new();
    while !seen.contains("event: message") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("the stream's event arrives through nginx within 5 s")
            .expect("the stream stays open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn the_inbox_behind_nginx_is_served_whole_with_a_secure_cookie() {
    let app = app(|s| s.inbox.enabled = true).await;
    let nginx = Nginx::start(app.addr);
    let browser = nginx.client([127, 0, 0, 7]);

    let page = browser.get(nginx.url("/inbox")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    let signed_in = browser
        .post(nginx.url("/inbox/session"))
        .header("x-kenar-inbox", "1")
        .json(&serde_json::json!({ "token": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let line = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    // Over https through the proxy, the cookie is never sent over plain http.
    assert!(
        line.contains("; Secure") && line.contains("HttpOnly"),
        "{line}"
    );
    let cookie = line.split(';').next().unwrap();
    let list = browser
        .get(nginx.url("/api/v1/conversations"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
}
