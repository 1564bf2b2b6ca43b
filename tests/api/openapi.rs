//! The OpenAPI document: served at `GET /api/openapi.json`, the same as
//! the checked-in `docs/openapi.json`, and true to the router: every
//! documented operation reaches a handler, nothing else is served on a
//! documented path, every route in the code is documented, and real
//! answers have the documented shape.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, ticket};

/// Operations documented ahead of their routes: the queue routes are
/// written on another branch (`http::staff::queue`). Once they are
/// served, the test below fails until they are taken off this list.
const DOCUMENTED_AHEAD: &[(&str, &str)] = &[];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn snapshot_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

async fn served(app: &TestApp) -> (String, Value) {
    let r = app
        .send(Method::GET, "/api/openapi.json", None, vec![], &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    let doc: Value = serde_json::from_str(&r.body).unwrap();
    (r.body, doc)
}

/// Every (method, path) the document names.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(*method).is_some() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete path for a template: each `{param}` becomes `1`.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push('1');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let app = spawn_app().await;
    let (body, doc) = served(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "oxidesk");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    // What is served is what the CLI prints (the served body is trimmed).
    assert_eq!(body, oxidesk::http::openapi::json().trim_end());
    let path = snapshot_path();
    let expected = oxidesk::http::openapi::json();
    if std::env::var_os("OXIDESK_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, expected).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != expected {
        let first_diff = checked_in
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "one is a prefix of the other".to_string(),
                |i| format!("line {}", i + 1),
            );
        panic!(
            "docs/openapi.json differs from the generated document ({first_diff}).\n\
             Review the change, then update the file with\n\
             \n    OXIDESK_UPDATE_OPENAPI=1 cargo test --test api openapi\n\
             \nor `cargo run -q -- openapi > docs/openapi.json`."
        );
    }
}

#[tokio::test]
async fn the_document_route_wins_over_the_intake_file_route() {
    let app = spawn_app().await;
    // `/api/{file}` would answer 404 for `openapi.json` (not `tickets.*`).
    served(&app).await;
    let r = app
        .send(Method::POST, "/api/openapi.json", None, vec![], &[])
        .await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.headers["allow"], "GET,HEAD");
    // The intake route still has every other file name.
    let r = app
        .send(Method::GET, "/api/tickets.json", None, vec![], &[])
        .await;
    assert_eq!(
        (r.status, r.headers["allow"].to_str().unwrap()),
        (405, "POST")
    );
    let r = app
        .send(Method::GET, "/api/http.php/openapi.json", None, vec![], &[])
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn every_documented_operation_reaches_its_handler() {
    let app = spawn_app().await;
    let (_, doc) = served(&app).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 17, "{ops:?}");
    for (method, template) in &ops {
        let path = concrete(template);
        // No credentials, no body: every handler answers for itself
        // (401 from its extractor, 400 for an empty sign-in), never the
        // router's 404 or 405.
        let r = app
            .send(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &path,
                None,
                vec![],
                &[],
            )
            .await;
        let ahead = DOCUMENTED_AHEAD.contains(&(method.as_str(), template.as_str()));
        if ahead {
            assert_eq!(
                r.status, 404,
                "{method} {template} is served now: take it off DOCUMENTED_AHEAD and move its \
                 documentation from http::openapi onto the handler"
            );
        } else {
            assert!(
                ![404, 405].contains(&r.status),
                "{method} {template} ({path}) is documented but the router answers {} {}",
                r.status,
                r.body
            );
        }
    }
}

#[tokio::test]
async fn nothing_undocumented_is_served_on_a_documented_path() {
    let app = spawn_app().await;
    let (_, doc) = served(&app).await;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = concrete(template);
        for method in ["get", "put", "post", "delete", "patch"] {
            // HEAD is served wherever GET is (axum, and the read API).
            if item.get(method).is_some() {
                continue;
            }
            let r = app
                .send(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &path,
                    None,
                    vec![],
                    &[],
                )
                .await;
            let documented_ahead = DOCUMENTED_AHEAD.iter().any(|(_, p)| p == template);
            let expected: &[u16] = if documented_ahead {
                &[404, 405]
            } else {
                &[405]
            };
            assert!(
                expected.contains(&r.status),
                "{} {template}: not documented, answered {} {}",
                method.to_uppercase(),
                r.status,
                r.body
            );
        }
    }
}

/// The `.route("…")` templates written in `src/http`.
fn routes_in_the_code() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, _) in text.match_indices(".route(") {
                    let rest = text[i + ".route(".len()..].trim_start();
                    let Some(rest) = rest.strip_prefix('"') else {
                        continue;
                    };
                    out.push(rest[..rest.find('"').unwrap()].to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http"),
        &mut out,
    );
    out
}

/// Whether a documented path is one a router template serves: each
/// `{param}` of the template stands for one whole segment.
fn template_serves(template: &str, documented: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let d: Vec<&str> = documented.split('/').collect();
    t.len() == d.len()
        && t.iter()
            .zip(&d)
            .all(|(t, d)| (t.starts_with('{') && t.ends_with('}') && !d.is_empty()) || t == d)
}

#[tokio::test]
async fn every_route_in_the_code_is_documented() {
    let doc: Value = serde_json::from_str(oxidesk::http::openapi::json()).unwrap();
    let documented: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let routes = routes_in_the_code();
    assert!(routes.len() >= 10, "found only {routes:?}");
    for route in &routes {
        assert!(
            documented.iter().any(|d| template_serves(route, d)),
            "route {route} is served but not in the OpenAPI document: annotate its handler \
             with #[utoipa::path] and add it to its module's doc struct"
        );
    }
    // And each documented path is served by some route (or documented ahead).
    for d in &documented {
        assert!(
            routes.iter().any(|r| template_serves(r, d))
                || DOCUMENTED_AHEAD.iter().any(|(_, p)| p == d),
            "{d} is documented but no route serves it"
        );
    }
}

// ---- real answers have the documented shape

/// `Ok` when `value` fits `schema` as far as these documents go: `$ref`,
/// `oneOf`, `type` (one or several), `enum`, `required`, `properties`
/// (an object with properties has no others), `items`.
fn fits(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        return fits(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let fitting = options
            .iter()
            .filter(|s| fits(doc, s, value, at).is_ok())
            .count();
        return if fitting == 1 {
            Ok(())
        } else {
            Err(format!("{at}: {fitting} of oneOf fit {value}"))
        };
    }
    if let Some(types) = match &schema["type"] {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    } {
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let fits_type =
            types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
        if !fits_type {
            return Err(format!("{at}: {actual} where {types:?} is documented"));
        }
    }
    if let Some(values) = schema["enum"].as_array()
        && !values.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {values:?}"));
    }
    if let (Some(props), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: required {name} missing"));
            }
        }
        for (k, v) in object {
            let s = props
                .get(k)
                .ok_or_else(|| format!("{at}: {k} is not documented"))?;
            fits(doc, s, v, &format!("{at}.{k}"))?;
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            fits(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    let s =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(!s.is_null(), "no JSON schema for {method} {path} {status}");
    s
}

#[tokio::test]
async fn answers_have_the_documented_shape() {
    let app = spawn_app().await;
    let (_, doc) = served(&app).await;
    let fits = |schema: &Value, value: &Value| {
        if let Err(e) = fits(&doc, schema, value, "$") {
            panic!("{e}\nin {value:#}");
        }
    };
    // A ticket with a form field and an attachment, read by key.
    let mut t = ticket("openapi");
    t["phone"] = json!("318-555-8634 x123");
    t["attachments"] = json!([{"a.txt": "data:text/plain,hello"}]);
    let n = app.post_json(&t).await.number();
    let read = app.get_ticket(&n).await;
    let schema = response_schema(&doc, "get", "/api/tickets/{number}.json", "200");
    fits(schema, &read);
    // The check itself can fail: an undocumented key, a value outside an
    // enum, a missing required key, a wrong type.
    for (pointer, bad) in [
        ("/surprise", json!(1)),
        ("/status", json!("archived")),
        ("/thread/0/flags/bounce", json!("no")),
    ] {
        let mut wrong = read.clone();
        match wrong.pointer_mut(pointer) {
            Some(v) => *v = bad,
            None => {
                wrong["surprise"] = bad;
            }
        }
        assert!(
            super::openapi::fits(&doc, schema, &wrong, "$").is_err(),
            "{pointer}"
        );
    }
    let mut wrong = read.clone();
    wrong.as_object_mut().unwrap().remove("thread");
    assert!(super::openapi::fits(&doc, schema, &wrong, "$").is_err());
    // Errors: the JSON envelope.
    let r = app
        .send(
            Method::GET,
            "/api/tickets/999999.json",
            Some(&app.key),
            vec![],
            &[("Accept", "application/json")],
        )
        .await;
    assert_eq!(r.status, 404);
    let error = doc["components"]["schemas"]["Error"].clone();
    fits(&error, &serde_json::from_str(&r.body).unwrap());

    // The staff side: the agent, a note, a reply and the full ticket.
    let (_, token) = app.add_agent("admin@example.com", true, &[]).await;
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let r = app
        .send(Method::GET, "/api/v1/me", None, vec![], &auth)
        .await;
    fits(
        response_schema(&doc, "get", "/api/v1/me", "200"),
        &serde_json::from_str(&r.body).unwrap(),
    );
    let r = app
        .send(
            Method::POST,
            &format!("/api/v1/tickets/{n}/notes"),
            None,
            json!({"body": "<b>note</b>", "format": "html"})
                .to_string()
                .into_bytes(),
            &auth,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    fits(
        response_schema(&doc, "post", "/api/v1/tickets/{number}/notes", "201"),
        &serde_json::from_str(&r.body).unwrap(),
    );
    let r = app
        .send(
            Method::PATCH,
            &format!("/api/v1/tickets/{n}"),
            None,
            json!({"status": "resolved", "assignee_id": null})
                .to_string()
                .into_bytes(),
            &auth,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let full: Value = serde_json::from_str(&r.body).unwrap();
    fits(
        response_schema(&doc, "patch", "/api/v1/tickets/{number}", "200"),
        &full,
    );
    assert!(!full["events"].as_array().unwrap().is_empty());
    let r = app
        .send(
            Method::GET,
            &format!("/api/v1/tickets/{n}"),
            None,
            vec![],
            &auth,
        )
        .await;
    let full: Value = serde_json::from_str(&r.body).unwrap();
    fits(
        response_schema(&doc, "get", "/api/v1/tickets/{number}", "200"),
        &full,
    );
    // A staff error.
    let r = app
        .send(Method::GET, "/api/v1/tickets/999999", None, vec![], &auth)
        .await;
    assert_eq!(r.status, 404);
    fits(&error, &serde_json::from_str(&r.body).unwrap());
    // The attachment's media types are among the documented ones.
    let url = full["thread"][0]["attachments"][0]["url"].as_str().unwrap();
    let r = app.send(Method::GET, url, None, vec![], &auth).await;
    assert_eq!(r.status, 200);
    let documented = doc["paths"]["/api/v1/attachments/{id}"]["get"]["responses"]["200"]["content"]
        .as_object()
        .unwrap();
    let served_type = r.headers["content-type"].to_str().unwrap();
    assert!(documented.contains_key(served_type), "{served_type}");
}
