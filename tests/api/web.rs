//! The staff web interface over real HTTP (no browser: the browser tests
//! drive Chromium): sign-in and the cookie, sessions, CSRF, headers,
//! customer HTML made inert, the conflict message, admin pages, weight.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::helpers::{TestApp, exec_sql, spawn_app_env, ticket};

const PASSWORD: &str = "correct horse battery staple";

async fn app() -> TestApp {
    spawn_app_env("", &[("OXIDESK__WEB__SECURE_COOKIES", "false")]).await
}

/// An agent with a known password: (id, email).
async fn agent(app: &TestApp, email: &str, admin: bool, departments: &[i64]) -> i64 {
    use oxidesk::domain::agents::{Password, hash_password};
    let hash = hash_password(Password::presented(PASSWORD.into()))
        .await
        .unwrap();
    app.store
        .add_agent(oxidesk::storage::NewAgent {
            email: email.into(),
            name: email.split('@').next().unwrap().into(),
            password_hash: hash,
            admin,
            departments: departments.to_vec(),
            created: "2026-01-01T00:00:00Z".into(),
        })
        .await
        .unwrap()
        .0
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    /// The value of the first `name="csrf" value="…"`.
    fn csrf(&self) -> String {
        attr_after(&self.body, "name=\"csrf\" value=\"")
    }
}

fn attr_after(body: &str, marker: &str) -> String {
    let at = body
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {body}"))
        + marker.len();
    body[at..].split('"').next().unwrap().to_string()
}

/// A browser-like client without redirects; `cookie` is sent when set.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        Self {
            base: format!("http://{}", app.addr),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("Cookie", format!("oxidesk_session={c}")),
            None => req,
        };
        let r = req.send().await.unwrap();
        Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &[u8])],
    ) -> Page {
        let boundary = "XbOuNdArYx";
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .bytes(),
            );
        }
        for (name, data) in files {
            body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"attachments\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n").bytes());
            body.extend(*data);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").bytes());
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body),
        )
        .await
    }

    /// Signs in; keeps the cookie.
    async fn sign_in(&mut self, email: &str) -> Page {
        let page = self
            .post(
                "/scp/login",
                &[("email", email), ("password", PASSWORD), ("next", "/scp/")],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        let cookie = page.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
        let value = cookie
            .strip_prefix("oxidesk_session=")
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        self.cookie = Some(value.to_string());
        page
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn new_ticket(app: &TestApp, body: serde_json::Value) -> String {
    app.post_json(&body).await.number()
}

#[tokio::test]
async fn sign_in_sets_a_session_cookie_with_the_right_flags_and_pages_need_it() {
    let app = app().await;
    agent(&app, "ann@example.com", false, &[1]).await;
    let mut b = Browser::new(&app);

    let root = b.get("/").await;
    assert_eq!((root.status, root.location()), (303, "/scp/"));
    let queue = b.get("/scp/").await;
    assert_eq!((queue.status, queue.location()), (303, "/scp/login"));
    let deep = b.get("/scp/tickets/123456?x=1").await;
    assert_eq!(deep.status, 303);
    assert_eq!(
        deep.location(),
        "/scp/login?next=/scp/tickets/123456%3Fx%3D1"
    );

    let form = b.get("/scp/login").await;
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains("<form id=\"login\" method=\"post\" action=\"/scp/login\">")
    );

    let wrong = b
        .post(
            "/scp/login",
            &[("email", "ann@example.com"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("class=\"flash error\""),
        "{}",
        wrong.body
    );
    assert!(wrong.body.contains("Invalid email or password"));
    assert!(wrong.headers.get(SET_COOKIE).is_none());

    let ok = b.sign_in("ann@example.com").await;
    assert_eq!(ok.location(), "/scp/");
    let cookie = ok.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "secure_cookies = false: {cookie}"
    );
    // The cookie is a staff API session token.
    let token = b.cookie.clone().unwrap();
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let queue = b.get("/scp/").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    for needle in [
        "<header",
        "<nav id=\"queues\" aria-label=\"Queues\">",
        "<main id=\"main\"",
        "form id=\"logout\"",
        "data-queue=\"open\"",
        "data-queue=\"dept-1\"",
        "table id=\"queue\"",
        "tbody id=\"queue-rows\"",
    ] {
        assert!(queue.body.contains(needle), "{needle}");
    }
    assert!(!queue.body.contains("admin-keys"), "not an admin");

    // Signing out ends the session.
    let csrf = queue.csrf();
    let out = b.post("/scp/logout", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/scp/login"));
    assert!(
        out.headers
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(b.get("/scp/").await.status, 303);
}

#[tokio::test]
async fn cookies_are_secure_by_default() {
    let app = crate::helpers::spawn_app().await;
    agent(&app, "ann@example.com", false, &[1]).await;
    let mut b = Browser::new(&app);
    let ok = b.sign_in("ann@example.com").await;
    assert!(
        ok.headers
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_static_files_a_long_cache() {
    let app = app().await;
    agent(&app, "ann@example.com", true, &[]).await;
    let mut b = Browser::new(&app);
    let login = b.get("/scp/login").await;
    b.sign_in("ann@example.com").await;
    let number = new_ticket(&app, ticket("hdr")).await;
    for page in [
        login,
        b.get("/scp/").await,
        b.get(&format!("/scp/tickets/{number}")).await,
        b.get("/scp/admin/keys").await,
    ] {
        let h = |n: &str| {
            page.headers
                .get(n)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        assert_eq!(page.status, 200);
        assert_eq!(
            h("content-security-policy"),
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        assert_eq!(h("x-frame-options"), "DENY");
        assert_eq!(h("referrer-policy"), "same-origin");
        assert_eq!(h("x-content-type-options"), "nosniff");
        assert_eq!(h("cache-control"), "no-store");
        assert!(h("content-type").starts_with("text/html"));
        // No inline script or style in our markup.
        assert!(!page.body.contains("<script>"), "inline script");
        assert!(!page.body.contains(" style="), "inline style");
        assert!(!page.body.contains("<style"), "style element");
    }
    let page = b.get("/scp/").await;
    for name in ["htmx.min.js", "app.js", "style.css"] {
        let marker = "/scp/static/";
        let url = page
            .body
            .match_indices(marker)
            .map(|(i, _)| page.body[i..].split('"').next().unwrap())
            .find(|u| u.ends_with(name))
            .unwrap_or_else(|| panic!("{name} linked"));
        let file = Browser::new(&app).get(url).await;
        assert_eq!(file.status, 200, "{url}");
        assert_eq!(
            file.headers["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let stale = Browser::new(&app)
            .get(&format!("/scp/static/0000000000000000/{name}"))
            .await;
        assert_eq!(stale.status, 404);
    }
}

#[tokio::test]
async fn a_post_without_its_csrf_token_is_refused_and_writes_nothing() {
    let app = app().await;
    agent(&app, "ann@example.com", true, &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com").await;
    let number = new_ticket(&app, ticket("csrf")).await;
    let page = b.get(&format!("/scp/tickets/{number}")).await;
    let csrf = page.csrf();
    let entries = app.count("thread_entries").await;
    for bad in [None, Some("0000")] {
        let mut form = vec![("body", "a note")];
        if let Some(t) = bad {
            form.push(("csrf", t));
        }
        let refused = b.post(&format!("/scp/tickets/{number}/note"), &form).await;
        assert_eq!(refused.status, 403);
        assert!(refused.body.contains("class=\"flash error\""));
        assert!(refused.body.contains("CSRF token missing or invalid"));
        let refused = b
            .post_multipart(
                &format!("/scp/tickets/{number}/reply"),
                &[("body", "hi"), ("action", "reply")],
                &[],
            )
            .await;
        assert_eq!(refused.status, 403);
        let refused = b.post("/scp/admin/keys", &[("ip", "10.0.0.1")]).await;
        assert_eq!(refused.status, 403);
    }
    assert_eq!(app.count("thread_entries").await, entries);
    // With the token (form field, or header as htmx sends it) it works.
    let ok = b
        .post(
            &format!("/scp/tickets/{number}/note"),
            &[("body", "a note"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location(), format!("/scp/tickets/{number}?done=note"));
    let shown = b.get(ok.location()).await;
    assert!(shown.body.contains("class=\"flash ok\""));
    assert!(shown.body.contains("entry entry-note"));
    let via_header = b
        .send(
            b.client
                .post(format!("{}/scp/tickets/{number}/note", b.base))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("X-CSRF-Token", &csrf)
                .body("body=second"),
        )
        .await;
    assert_eq!(via_header.status, 303);
    // Another session's token is not this one's.
    let mut other = Browser::new(&app);
    other.sign_in("ann@example.com").await;
    let refused = other
        .post(
            &format!("/scp/tickets/{number}/note"),
            &[("body", "x"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn customer_html_is_rendered_inert() {
    let app = app().await;
    agent(&app, "ann@example.com", true, &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com").await;
    let payloads = [
        "<p>one</p><script>window.xss=1</script>",
        "<img src=x onerror=\"window.xss=1\">",
        "<a href=\"javascript:window.xss=1\">click</a>",
        "<svg><script>window.xss=1</script><circle onload=\"window.xss=1\"/></svg>",
        "<style>body{background:url(http://beacon.test/b.gif)}</style><p style=\"background:url(http://beacon.test/c.gif)\">styled</p>",
        "<p>pic <img src=\"http://beacon.test/remote.png\" alt=\"r\"></p>",
    ];
    for (i, html) in payloads.iter().enumerate() {
        let mut t = ticket(&format!("xss{i}"));
        t["message"] = json!(format!("data:text/html,<p>visible text</p>{html}"));
        let number = new_ticket(&app, t).await;
        let page = b.get(&format!("/scp/tickets/{number}")).await;
        assert_eq!(page.status, 200);
        let thread = &page.body[page.body.find("<section id=\"thread\"").unwrap()
            ..page.body.find("<section class=\"compose\"").unwrap()];
        for banned in [
            "<script",
            "onerror",
            "onload",
            "javascript:",
            "<svg",
            "<style",
            "style=",
            "url(",
            "src=\"http",
        ] {
            assert!(!thread.contains(banned), "{html}: {banned} in {thread}");
        }
    }
}

#[tokio::test]
async fn a_stale_version_gets_the_conflict_message_and_writes_nothing() {
    let app = app().await;
    agent(&app, "ann@example.com", true, &[]).await;
    agent(&app, "bob@example.com", true, &[]).await;
    let mut ann = Browser::new(&app);
    ann.sign_in("ann@example.com").await;
    let mut bob = Browser::new(&app);
    bob.sign_in("bob@example.com").await;
    let number = new_ticket(&app, ticket("conflict")).await;
    let path = format!("/scp/tickets/{number}");
    let a = ann.get(&path).await;
    let bp = bob.get(&path).await;
    let version = attr_after(&a.body, "name=\"version\" value=\"");
    assert_eq!(version, attr_after(&bp.body, "name=\"version\" value=\""));
    let update = format!("{path}/update");
    let first = bob
        .post(
            &update,
            &[
                ("csrf", &bp.csrf()),
                ("version", &version),
                ("status", "open"),
                ("priority_id", "4"),
            ],
        )
        .await;
    assert_eq!(first.status, 303, "{}", first.body);
    let second = ann
        .post(
            &update,
            &[
                ("csrf", &a.csrf()),
                ("version", &version),
                ("status", "closed"),
                ("priority_id", "2"),
            ],
        )
        .await;
    assert_eq!(second.status, 409);
    assert!(
        second.body.contains("class=\"flash conflict\""),
        "{}",
        second.body
    );
    assert!(
        second
            .body
            .contains("Another agent changed this ticket first")
    );
    // The current values are shown, and the new version to retry with.
    assert!(second.body.contains("data-field=\"priority\">Emergency<"));
    assert_ne!(
        attr_after(&second.body, "name=\"version\" value=\""),
        version
    );
    let now = ann.get(&path).await;
    assert!(
        now.body
            .contains("data-field=\"status\" class=\"status status-open\"")
    );
    assert!(now.body.contains("data-field=\"priority\">Emergency<"));
}

#[tokio::test]
async fn reply_with_an_attachment_and_resolve_then_assign() {
    let app = app().await;
    let ann = agent(&app, "ann@example.com", true, &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com").await;
    let number = new_ticket(&app, ticket("reply")).await;
    let path = format!("/scp/tickets/{number}");
    let page = b.get(&path).await;
    let r = b
        .post_multipart(
            &format!("{path}/reply"),
            &[
                ("csrf", &page.csrf()),
                ("body", "Here you are"),
                ("action", "reply_resolve"),
            ],
            &[("notes.txt", b"hello file")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let after = b.get(r.location()).await;
    assert!(after.body.contains("entry entry-response"));
    assert!(after.body.contains("status status-resolved"));
    let link = attr_after(&after.body, "class=\"attachment\" href=\"");
    let file = b.get(&link).await;
    assert_eq!(file.body, "hello file");
    assert_eq!(file.headers["x-content-type-options"], "nosniff");
    assert!(
        file.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    // An empty reply is refused with the message, nothing written.
    let empty = b
        .post_multipart(
            &format!("{path}/reply"),
            &[("csrf", &page.csrf()), ("body", " "), ("action", "reply")],
            &[],
        )
        .await;
    assert_eq!(empty.status, 422);
    assert!(empty.body.contains("class=\"flash error\""));
    // Assign through the controls.
    let version = attr_after(&after.body, "name=\"version\" value=\"");
    let ann_id = ann.to_string();
    let assign = b
        .post(
            &format!("{path}/update"),
            &[
                ("csrf", &page.csrf()),
                ("version", &version),
                ("assignee_id", &ann_id),
                ("status", "resolved"),
            ],
        )
        .await;
    assert_eq!(assign.status, 303, "{}", assign.body);
    let shown = b.get(assign.location()).await;
    assert!(shown.body.contains("data-field=\"assignee\">ann<"));
    assert!(
        shown
            .body
            .contains("class=\"event\" data-type=\"assigned\"")
    );
    assert!(
        shown
            .body
            .contains("class=\"event\" data-type=\"status_changed\"")
    );
    // It is in Mine now, and found by the search box.
    let mine = b.get("/scp/tickets?queue=mine&sort=-updated").await;
    assert_eq!(mine.status, 200);
    let queue = b.get("/scp/tickets?queue=resolved&q=reply").await;
    assert!(
        queue.body.contains(&format!("data-number=\"{number}\"")),
        "{}",
        queue.body
    );
}

#[tokio::test]
async fn admin_pages_are_404_for_agents_and_work_for_admins() {
    let app = app().await;
    agent(&app, "boss@example.com", true, &[]).await;
    agent(&app, "ann@example.com", false, &[1]).await;
    let mut ann = Browser::new(&app);
    ann.sign_in("ann@example.com").await;
    for path in ["/scp/admin/keys", "/scp/admin/agents", "/scp/admin/outbox"] {
        assert_eq!(ann.get(path).await.status, 404, "{path}");
    }
    let queue = ann.get("/scp/").await;
    assert_eq!(
        ann.post(
            "/scp/admin/keys",
            &[("csrf", &queue.csrf()), ("ip", "10.0.0.1")]
        )
        .await
        .status,
        404
    );

    let mut boss = Browser::new(&app);
    boss.sign_in("boss@example.com").await;
    let keys = boss.get("/scp/admin/keys").await;
    assert!(keys.body.contains("id=\"admin-keys\""));
    let created = boss
        .post(
            "/scp/admin/keys",
            &[
                ("csrf", &keys.csrf()),
                ("ip", "127.0.0.1, 10.0.0.0/8"),
                ("can_create", "1"),
                ("notes", "web"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let key = created
        .body
        .split("<code id=\"new-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let made = app
        .send(
            reqwest::Method::POST,
            "/api/tickets.json",
            Some(&key),
            ticket("bykey").to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let again = boss.get("/scp/admin/keys").await;
    assert!(!again.body.contains(&key), "shown once");
    assert!(again.body.contains("class=\"key-revoke\""));

    let agents = boss.get("/scp/admin/agents").await;
    let added = boss
        .post(
            "/scp/admin/agents",
            &[
                ("csrf", &agents.csrf()),
                ("email", "new@example.com"),
                ("name", "New"),
                ("departments", "1"),
                ("departments", "2"),
            ],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let password = added
        .body
        .split("<code id=\"new-password\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let signed = Browser::new(&app)
        .post(
            "/scp/login",
            &[("email", "new@example.com"), ("password", &password)],
        )
        .await;
    assert_eq!(signed.status, 303);
    assert!(added.body.contains("class=\"agent-disable\""));
    assert!(added.body.contains("class=\"agent-password\""));

    let outbox = boss.get("/scp/admin/outbox").await;
    assert_eq!(outbox.status, 200);
    assert!(outbox.body.contains("<table id=\"outbox\">"));
}

#[tokio::test]
async fn a_20_entry_ticket_and_a_50_row_queue_weigh_at_most_60_kb_with_the_css() {
    let app = app().await;
    agent(&app, "ann@example.com", true, &[]).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com").await;
    let mut last = String::new();
    for i in 0..50 {
        let mut t = ticket(&format!("weight{i}"));
        t["message"] = json!(format!("Body {i} {}", "words ".repeat(60)));
        last = new_ticket(&app, t).await;
    }
    let path = format!("/scp/tickets/{last}");
    for i in 0..19 {
        let page = b.get(&path).await;
        let body = format!("Reply {i}: {}", "text of a typical answer ".repeat(20));
        let r = b
            .post(
                &format!("{path}/note"),
                &[("csrf", &page.csrf()), ("body", &body)],
            )
            .await;
        assert_eq!(r.status, 303);
    }
    let css = oxidesk::web::assets::stylesheet_bytes();
    let ticket_page = b.get(&path).await;
    assert_eq!(
        ticket_page.body.matches("<article class=\"entry").count(),
        20
    );
    let queue = b.get("/scp/").await;
    assert_eq!(queue.body.matches("<tr class=\"ticket-row\"").count(), 50);
    for (name, page) in [("ticket", &ticket_page), ("queue", &queue)] {
        let weight = page.body.len() + css;
        assert!(weight <= 60 * 1024, "{name}: {weight} bytes");
    }
    // The rows fragment alone, for htmx.
    let rows = b.get("/scp/rows?queue=open").await;
    assert_eq!(rows.status, 200);
    assert_eq!(rows.body.matches("<tr class=\"ticket-row\"").count(), 50);
    assert!(queue.body.contains("hx-trigger=\"every 10s\""));
}

/// The side bar's count of `queue` on a page.
fn nav_count(page: &Page, queue: &str) -> i64 {
    let marker = format!("data-queue=\"{queue}\"");
    let at = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker}"));
    attr_after(&page.body[at..], "<span class=\"count\">")
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_side_bar_counts_are_kept_a_moment_but_never_past_a_change_this_server_answered() {
    for (max_age_ms, kept) in [("60000", true), ("0", false)] {
        let app = spawn_app_env(
            "",
            &[
                ("OXIDESK__WEB__SECURE_COOKIES", "false"),
                ("OXIDESK__WEB__COUNTS_MAX_AGE_MS", max_age_ms),
            ],
        )
        .await;
        agent(&app, "ann@example.com", true, &[]).await;
        let first = new_ticket(&app, ticket("kept-1")).await;
        let mut b = Browser::new(&app);
        b.sign_in("ann@example.com").await;
        let page = b.get("/scp/").await;
        assert_eq!(
            (nav_count(&page, "open"), nav_count(&page, "resolved")),
            (1, 0)
        );

        // Resolved by another process (straight into the database): a
        // kept count does not see it yet.
        let now = oxidesk::domain::views::format_time(jiff::Timestamp::now());
        exec_sql(
            &app.config,
            &format!(
                "UPDATE tickets SET status = 'resolved', updated = '{now}', status_changed = '{now}'
                 WHERE number = '{first}'"
            ),
        )
        .await;
        let page = b.get("/scp/").await;
        let expected = if kept { (1, 0) } else { (0, 1) };
        assert_eq!(
            (nav_count(&page, "open"), nav_count(&page, "resolved")),
            expected,
            "counts_max_age_ms = {max_age_ms}"
        );

        // A ticket taken in by this server: the next page counts anew.
        new_ticket(&app, ticket("kept-2")).await;
        let page = b.get("/scp/").await;
        assert_eq!(
            (nav_count(&page, "open"), nav_count(&page, "resolved")),
            (1, 1),
            "counts_max_age_ms = {max_age_ms}"
        );
    }
}

#[tokio::test]
async fn the_ticket_page_agent_list_is_kept_a_moment_but_never_past_a_change_this_server_answered()
{
    let app = spawn_app_env(
        "",
        &[
            ("OXIDESK__WEB__SECURE_COOKIES", "false"),
            ("OXIDESK__WEB__COUNTS_MAX_AGE_MS", "60000"),
        ],
    )
    .await;
    agent(&app, "ann@example.com", true, &[]).await;
    let number = new_ticket(&app, ticket("agents-kept")).await;
    let mut b = Browser::new(&app);
    b.sign_in("ann@example.com").await;
    let path = format!("/scp/tickets/{number}");
    assert!(b.get(&path).await.body.contains("ann"));

    // Added by another process: the kept list does not show it yet.
    crate::helpers::insert_agent(&app.config, "bob@example.com", false, &[1]).await;
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Agent bob@example.com"));

    // Any change this server answers: the next page reads the list anew.
    new_ticket(&app, ticket("agents-kept-2")).await;
    assert!(b.get(&path).await.body.contains("Agent bob@example.com"));
}
