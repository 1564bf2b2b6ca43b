//! The browser tests' world: a chromedriver process driving headless
//! Chromium ([`Browser`], one per test, one or more sessions each), the
//! real `oxidesk` binary serving a fresh database with mail going to a
//! real SMTP sink ([`Desk`]), and a [`Page`] wrapper that selects only by
//! what `web-contract.md` names.
//!
//! Waits poll a condition until a deadline ([`wait_until`]); no test
//! sleeps and then asserts that something did not happen.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use thirtyfour::prelude::*;
use thirtyfour::{ChromeCapabilities, ChromiumLikeCapabilities};

use crate::smtp_sink::SmtpSink;

/// Debian's chromedriver (package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Every agent the tests make signs in with this (≥ 12 characters).
pub const PASSWORD: &str = "browser-test-password";
/// How long a wait for the page or the server may take before the test
/// fails: generous, as two cores are shared with Chromium and builds.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `check` every 100 ms until it answers `Some`, or fails the test
/// naming `what` after `within`.
pub async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `program` run by a shell in a new process group that waits for its
/// standard input to close: when this process lets go of the pipe — the
/// owner is dropped, or the test process dies, even by SIGKILL — the
/// shell kills its whole group (chromedriver with the Chromium processes
/// it started; the server). Add `program`'s arguments with `arg`.
fn guarded(program: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("\"$0\" \"$@\" </dev/null & read _; kill -KILL 0")
        .arg(program)
        .stdin(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd
}

/// Ends a [`guarded`] process group and reaps its shell.
fn end_group(child: &mut Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

/// A chromedriver process (see [`guarded`]) on a free loopback port.
pub struct Browser {
    child: Child,
    url: String,
}

impl Browser {
    /// Starts chromedriver; `None` (after saying why) when it is not
    /// installed, unless `OXIDESK_REQUIRE_BROWSER=1` (CI), which fails.
    pub async fn start() -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            let why = format!(
                "browser tests skipped: {CHROMEDRIVER} or {CHROMIUM} is missing \
                 (apt-get install chromium chromium-driver)"
            );
            assert!(
                std::env::var("OXIDESK_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "{why}, and OXIDESK_REQUIRE_BROWSER=1"
            );
            // Once, and past the test harness's output capture, so that
            // a skipped suite is visible in `cargo test`'s output.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "{why}");
            });
            return None;
        }
        // A port chosen here may be taken before chromedriver binds it:
        // then chromedriver exits and another is tried.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = guarded(CHROMEDRIVER);
            cmd.arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = cmd.spawn().expect("chromedriver starts");
            let mut browser = Browser {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
            if browser.wait_ready().await {
                return Some(browser);
            }
        }
        panic!("chromedriver did not become ready");
    }

    /// Polls `/status` until `"ready": true`; `false` when chromedriver
    /// did not answer in time (its port was taken: it exited at once).
    async fn wait_ready(&mut self) -> bool {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(r) = client.get(format!("{}/status", self.url)).send().await
                && let Ok(text) = r.text().await
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v["value"]["ready"] == true
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// A new headless Chromium session, `width`×`height` CSS pixels
    /// (exactly: the device metrics are overridden, as the window size
    /// includes the browser's frame), against `desk`.
    pub async fn session(&self, desk: &Desk, width: u32, height: u32) -> Page {
        let mut caps = ChromeCapabilities::new();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            &format!("--window-size={width},{}", height + 150),
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-crash-reporter",
            "--disable-breakpad",
            "--password-store=basic",
            "--lang=en-US",
        ] {
            caps.add_arg(arg).unwrap();
        }
        let driver = WebDriver::new(&self.url, caps)
            .await
            .expect("a Chromium session");
        let page = Page {
            driver: Some(driver),
            base: format!("http://{}", desk.addr),
        };
        page.set_viewport(width, height).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Sessions quit before (they are declared after the browser);
        // what is left of the group goes now.
        end_group(&mut self.child);
    }
}

/// One browser session against one server.
pub struct Page {
    /// `None` once quit.
    driver: Option<WebDriver>,
    base: String,
}

impl Drop for Page {
    fn drop(&mut self) {
        // Not quit (a test failed): thirtyfour's own fallback would block
        // this runtime's thread on a request that needs the runtime (two
        // minutes, then a timeout). The browser's process group goes when
        // the [`Browser`] is dropped instead.
        if let Some(d) = self.driver.take() {
            let _ = d.leak();
        }
    }
}

impl Page {
    /// The WebDriver session.
    pub fn driver(&self) -> &WebDriver {
        self.driver.as_ref().expect("the session is open")
    }

    /// `path` on the server under test.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Exact viewport (CSS pixels); under 600 px wide it is a phone
    /// (mobile emulation: the page's `<meta name=viewport>` counts).
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.driver()
            .cdp()
            .emulation()
            .set_device_metrics_override(width, height, 1.0, width < 600)
            .await
            .expect("Emulation.setDeviceMetricsOverride");
    }

    /// Loads `path` and waits for the document to be complete.
    pub async fn goto(&self, path: &str) {
        self.driver()
            .goto(self.url(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        self.wait_loaded().await;
    }

    pub async fn wait_loaded(&self) {
        wait_until("document.readyState == complete", DEADLINE, || async {
            let v = self.js("return document.readyState").await;
            (v == "complete").then_some(())
        })
        .await;
    }

    /// The path (and query) of the current page.
    pub async fn path(&self) -> String {
        let url = self.driver().current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and
    /// answers its return value.
    pub async fn js_with(&self, script: &str, args: Vec<Value>) -> Value {
        self.driver()
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
            .json()
            .clone()
    }

    pub async fn js(&self, script: &str) -> Value {
        self.js_with(script, vec![]).await
    }

    /// The first element matching `css`, or `None`.
    pub async fn try_find(&self, css: &str) -> Option<WebElement> {
        self.driver()
            .find_all(By::Css(css))
            .await
            .ok()?
            .into_iter()
            .next()
    }

    /// The element matching `css`, now (fails the test if absent).
    pub async fn find(&self, css: &str) -> WebElement {
        self.try_find(css).await.unwrap_or_else(|| {
            panic!("no element matches {css} on {}", self.base);
        })
    }

    pub async fn count(&self, css: &str) -> usize {
        self.driver()
            .find_all(By::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    /// Waits until an element matches `css` and answers it.
    pub async fn wait_for(&self, css: &str) -> WebElement {
        let what = format!("an element matching {css}");
        wait_until(&what, DEADLINE, || self.try_find(css)).await
    }

    /// The text of the element matching `css` (whitespace collapsed).
    pub async fn text(&self, css: &str) -> String {
        let t = self.find(css).await.text().await.unwrap();
        t.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Removes every `.flash` now on the page, so that waiting for one
    /// after an action sees the action's own message (whether the form
    /// navigates or htmx swaps part of the page).
    pub async fn clear_flashes(&self) {
        self.js("document.querySelectorAll('.flash').forEach(e => e.remove())")
            .await;
    }

    /// Marks the current document; [`Page::is_marked`] is false once
    /// the browser navigated (a reload or another page).
    pub async fn mark(&self) {
        self.js("window.__marker = 'still-here'").await;
    }

    pub async fn is_marked(&self) -> bool {
        self.js("return window.__marker === 'still-here'").await == true
    }

    /// Fills `form#login` and submits it.
    pub async fn submit_login(&self, email: &str, password: &str) {
        let email_in = self.find("form#login input[name=email]").await;
        email_in.clear().await.unwrap();
        email_in.send_keys(email).await.unwrap();
        let pw = self.find("form#login input[name=password]").await;
        pw.clear().await.unwrap();
        pw.send_keys(password).await.unwrap();
        self.find("form#login button[type=submit]")
            .await
            .click()
            .await
            .unwrap();
    }

    /// Signs in through `form#login` and waits for the queue.
    pub async fn sign_in(&self, email: &str) {
        self.goto("/scp/login").await;
        self.submit_login(email, PASSWORD).await;
        self.wait_for("table#queue").await;
        self.wait_loaded().await;
    }

    /// Types `text` into the element matching `css` (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// Chooses `value` in the `select` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let option = format!("{css} option[value=\"{value}\"]");
        self.find(&option).await.click().await.unwrap();
        let chosen = self.find(css).await.value().await.unwrap();
        assert_eq!(chosen.as_deref(), Some(value), "{css}");
    }

    /// Clicks the element matching `css`, then waits for `flash` (e.g.
    /// `.flash.ok`) to appear (after clearing the old ones).
    pub async fn click_and_wait(&self, css: &str, flash: &str) -> WebElement {
        self.clear_flashes().await;
        self.find(css).await.click().await.unwrap();
        let f = self.wait_for(flash).await;
        self.wait_loaded().await;
        f
    }

    /// Presses `keys` on whatever has the focus.
    pub async fn press(&self, keys: impl Into<TypingData>) {
        self.driver()
            .action_chain()
            .send_keys(keys)
            .perform()
            .await
            .unwrap();
    }

    /// Whether a script in the page set the XSS flag.
    pub async fn xss_flag(&self) -> Value {
        self.js("return typeof window.__xss === 'undefined' ? null : window.__xss")
            .await
    }

    /// Saves a PNG of the whole page (up to 4000 px tall) as
    /// `<target>/screenshots/<name>.png` and answers its path; a page
    /// taller than 1000 px is also saved in parts of 1000 px
    /// (`<name>.part<i>.png`), small enough to look at in full size.
    /// The viewport is left as it is (captured beyond it): making it as
    /// tall as the page would also stretch whatever is sized in `vh`.
    pub async fn screenshot(&self, name: &str, width: u32) -> PathBuf {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let tall = self
            .js("return Math.ceil(document.documentElement.scrollHeight)")
            .await
            .as_u64()
            .unwrap_or(800)
            .clamp(100, 4000) as u32;
        let path = dir.join(format!("{name}.png"));
        self.capture(&path, width, 0, tall).await;
        if tall > 1000 {
            for (i, y) in (0..tall).step_by(1000).enumerate() {
                let part = dir.join(format!("{name}.part{}.png", i + 1));
                self.capture(&part, width, y, (tall - y).min(1000)).await;
            }
        }
        path
    }

    /// Saves the page's region `width`×`height` from `y` down as a PNG.
    async fn capture(&self, path: &Path, width: u32, y: u32, height: u32) {
        use base64::Engine;
        let params = serde_json::json!({
            "format": "png",
            "captureBeyondViewport": true,
            "clip": {"x": 0, "y": y, "width": width, "height": height, "scale": 1},
        });
        let shot = self
            .driver()
            .cdp()
            .send_raw("Page.captureScreenshot", params)
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Ends the session (Chromium exits).
    pub async fn quit(mut self) {
        if let Some(d) = self.driver.take() {
            let _ = d.quit().await;
        }
    }
}

/// `$CARGO_TARGET_DIR/screenshots`, else `target/screenshots` in the
/// package.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

/// A loopback port nothing listens on now (see `tests/api/helpers.rs`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `oxidesk serve` on a fresh database (SQLite file, or a
/// PostgreSQL database of its own when `TEST_DATABASE_URL` is set), with
/// `[web] secure_cookies = false` and `poll_secs = 1`, its outbox sender
/// mailing to `sink`, an API key (`oxidesk key add`) and agents made by
/// `oxidesk agent add`.
pub struct Desk {
    pub addr: SocketAddr,
    pub sink: SmtpSink,
    /// Intake API key (create and read) for 127.0.0.1.
    pub key: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    config_path: PathBuf,
    database: String,
    child: Child,
    pg_name: Option<String>,
}

impl Desk {
    pub async fn start() -> Desk {
        let sink = SmtpSink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let (database, pg_name) = test_database(&dir.path().join("oxidesk.db")).await;
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/oxidesk.toml"
        ))
        .unwrap();
        let config_path = dir.path().join("oxidesk.toml");
        std::fs::write(
            &config_path,
            format!(
                "database = \"{database}\"\n{fixture}\n\
                 [web]\nsecure_cookies = false\npoll_secs = 1\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let mut child = guarded(env!("CARGO_BIN_EXE_oxidesk"))
            .arg("--config")
            .arg(&config_path)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("OXIDESK_CONFIG")
            .env("OXIDESK__MAIL__ENABLED", "true")
            .env("OXIDESK__MAIL__SMTP_HOST", "127.0.0.1")
            .env("OXIDESK__MAIL__SMTP_PORT", sink.port.to_string())
            .env("OXIDESK__MAIL__FROM_ADDRESS", "support@example.com")
            .env("OXIDESK__MAIL__POLL_INTERVAL_MS", "200")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("oxidesk serve starts");
        let addr = match listening_address(&mut child) {
            Ok(addr) => addr,
            Err(why) => {
                end_group(&mut child);
                let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
                panic!("oxidesk serve did not start: {why}\n{log}");
            }
        };
        let mut desk = Desk {
            addr,
            sink,
            key: String::new(),
            client: reqwest::Client::new(),
            dir,
            config_path,
            database,
            child,
            pg_name,
        };
        let out = desk.cli(&["key", "add", "--ip", "127.0.0.1", "--can-read"], "");
        desk.key = out.lines().next().unwrap_or_default().to_string();
        assert!(!desk.key.is_empty(), "oxidesk key add printed no key");
        desk
    }

    /// Runs `oxidesk --config <ours> ARGS` with `stdin`; its stdout.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_oxidesk"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env_remove("OXIDESK_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "oxidesk {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `oxidesk agent add` with [`PASSWORD`]; the agent's id (through a
    /// staff API sign-in).
    pub async fn add_agent(&self, email: &str, name: &str, admin: bool) -> i64 {
        let mut args = vec!["agent", "add", "--email", email, "--name", name];
        if admin {
            args.push("--admin");
        } else {
            args.extend(["--department", "1"]);
        }
        args.push("--password-stdin");
        self.cli(&args, &format!("{PASSWORD}\n"));
        self.staff_session(email).await.1
    }

    /// A staff API session: its token and the agent's id.
    pub async fn staff_session(&self, email: &str) -> (String, i64) {
        let r = self
            .client
            .post(self.url("/api/v1/session"))
            .header("Content-Type", "application/json")
            .body(serde_json::json!({"email": email, "password": PASSWORD}).to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null);
        assert_eq!(status, 201, "staff sign-in for {email}: {v}");
        (
            v["token"].as_str().unwrap().to_string(),
            v["agent"]["id"].as_i64().unwrap(),
        )
    }

    /// `GET /api/v1/tickets/<number>` with a staff token.
    pub async fn staff_ticket(&self, token: &str, number: &str) -> Value {
        let r = self
            .client
            .get(self.url(&format!("/api/v1/tickets/{number}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Overwrites thread entry `entry_id` in the database with `html`
    /// as an HTML body, bypassing the intake's sanitiser: what a row
    /// written by an older version, or another tool, may hold. The page
    /// must sanitise it again when it renders it.
    pub async fn store_raw_html(&self, entry_id: i64, html: &str) {
        if let Some(path) = self.database.strip_prefix("sqlite://") {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            let n = conn
                .execute(
                    "UPDATE thread_entries SET format = 'html', body = ?1 WHERE id = ?2",
                    rusqlite::params![html, entry_id],
                )
                .unwrap();
            assert_eq!(n, 1, "entry {entry_id}");
        } else {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&self.database).await.unwrap();
            let r =
                sqlx::query("UPDATE thread_entries SET format = 'html', body = $1 WHERE id = $2")
                    .bind(html)
                    .bind(entry_id)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            assert_eq!(r.rows_affected(), 1, "entry {entry_id}");
        }
    }

    /// Waits until the sink has received as many mails as `tickets` have
    /// notifications (whatever the intake queued, e.g. autoresponses),
    /// so that a test counts its own mail from there.
    pub async fn wait_mail_settled(&self, token: &str, tickets: &[&str]) -> usize {
        let mut queued = 0;
        for n in tickets {
            let t = self.staff_ticket(token, n).await;
            queued += t["notifications"].as_array().map_or(0, |a| a.len());
        }
        self.sink
            .wait_until("the mail queued so far", 20, |s| {
                s.received().len() >= queued
            })
            .await;
        self.sink.received().len()
    }

    /// A ticket over the intake API (`POST /api/tickets.json`).
    pub async fn create_ticket(&self, body: &Value) -> String {
        self.intake("/api/tickets.json", body.to_string().into_bytes())
            .await
    }

    /// A ticket from a raw RFC 5322 message (`POST /api/tickets.email`).
    pub async fn create_from_mail(&self, mail: &str) -> String {
        self.intake("/api/tickets.email", mail.as_bytes().to_vec())
            .await
    }

    async fn intake(&self, path: &str, body: Vec<u8>) -> String {
        let r = self
            .client
            .post(self.url(path))
            .header("X-API-Key", &self.key)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 201, "{path}: {text}");
        text.trim().to_string()
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        end_group(&mut self.child);
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(self.dir.path().join("serve.log"))
        {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- oxidesk serve log (last lines) ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        if let Some(name) = self.pg_name.take() {
            drop_test_database(&name);
        }
    }
}

/// A customer's ticket for the intake API with a unique address.
pub fn ticket(tag: &str, subject: &str, message: &str) -> Value {
    serde_json::json!({
        "name": format!("Customer {tag}"),
        "email": format!("{tag}@example.com"),
        "subject": subject,
        "message": message,
    })
}

/// Reads a `serve --listen 127.0.0.1:0` child's stdout up to its
/// `listening on ADDR` line (as `tests/api/helpers.rs` does).
fn listening_address(child: &mut Child) -> Result<SocketAddr, String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.parse::<SocketAddr>().map_err(|e| e.to_string()));
                break;
            }
        }
        // Keep draining so that the server never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => r,
        Err(e) => Err(format!("no `listening on` line: {e}")),
    }
}

/// `TEST_DATABASE_URL` (an admin URL) → a PostgreSQL database of the
/// test's own; else the SQLite file `path` (as `tests/api/helpers.rs`).
async fn test_database(path: &Path) -> (String, Option<String>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Connection;
            let name = format!("oxidesk_browser_{}", hex::encode(rand::random::<[u8; 6]>()));
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            (format!("{base}/{name}"), Some(name))
        }
        _ => (format!("sqlite://{}", path.display()), None),
    }
}

/// Drops a test's PostgreSQL database (best effort).
fn drop_test_database(name: &str) {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let name = name.to_string();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .ok()
        })
    })
    .join();
}
