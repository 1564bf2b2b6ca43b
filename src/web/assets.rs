//! The static files (vendored htmx, `app.js`, `style.css`), embedded in
//! the binary and served under `/scp/static/<content-hash>/<name>` with a
//! year's immutable cache: a changed file gets a new URL.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    hash: String,
}

/// Every embedded file, hashed once.
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        (
            "htmx.min.js",
            "text/javascript; charset=utf-8",
            include_bytes!("static/htmx.min.js").as_slice(),
        ),
        (
            "app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("static/app.js").as_slice(),
        ),
        (
            "style.css",
            "text/css; charset=utf-8",
            include_bytes!("static/style.css").as_slice(),
        ),
    ]
    .into_iter()
    .map(|(name, content_type, bytes)| Asset {
        name,
        content_type,
        bytes,
        hash: hex::encode(&Sha256::digest(bytes)[..8]),
    })
    .collect()
});

/// The URL of an embedded file (`/scp/static/<hash>/<name>`).
pub fn url(name: &str) -> String {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| format!("/scp/static/{}/{}", a.hash, a.name))
        .unwrap_or_default()
}

/// Size of the stylesheet in bytes (a page's weight is its HTML and CSS).
pub fn stylesheet_bytes() -> usize {
    include_bytes!("static/style.css").len()
}

/// `GET /scp/static/{hash}/{name}`: the file if the hash is its current
/// one (an old URL is 404, never a stale file under a new name).
pub async fn serve(Path((hash, name)): Path<(String, String)>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name && a.hash == hash) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = (StatusCode::OK, asset.bytes).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
