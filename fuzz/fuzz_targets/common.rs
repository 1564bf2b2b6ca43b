//! What the fuzz targets share: the conformance fixture's configuration
//! (its forms, topics and limits), and for the HTTP target a real server
//! state on a SQLite file in a temporary directory.

#![allow(dead_code)] // Each target uses its part.

use std::sync::OnceLock;

use oxidesk::config::Config;
use oxidesk::domain::catalog::Catalog;

/// The fixture's configuration, with email intake on.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        // A memory-backed directory where there is one: the HTTP target
        // commits tickets, and fsync on a disk would bound its rate.
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            std::path::PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("oxidesk-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("fuzz.toml");
        let text = format!(
            "database = \"sqlite://{}/fuzz.db\"\n{}",
            dir.display(),
            include_str!("../../tests/conformance/oxidesk.toml")
        );
        std::fs::write(&path, text).expect("the configuration written");
        Config::load(Some(&path), std::iter::empty()).expect("the fixture configuration")
    })
}

/// The catalog the domain checks drafts against.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::new(config()))
}

/// The two document formats.
#[derive(Debug, Clone, Copy)]
pub enum Doc {
    Json,
    Xml,
}

/// Decodes a JSON or XML body and, when it decodes, runs the domain's
/// checks on the draft (as the create route does).
pub fn document(data: &[u8], doc: Doc) {
    let (limits, fields) = (catalog().intake_limits, catalog().field_limits);
    let draft = match doc {
        Doc::Json => oxidesk::intake::json::parse_json(data, &limits, &fields),
        Doc::Xml => oxidesk::intake::xml::parse_xml(data, &limits, &fields),
    };
    if let Ok(draft) = draft {
        let ctx = oxidesk::domain::tickets::RequestContext {
            client_ip: std::net::IpAddr::from([127, 0, 0, 1]),
            now: jiff::Timestamp::from_second(1_800_000_000).expect("a time"),
        };
        let _ = oxidesk::domain::tickets::prepare_ticket(catalog(), draft, &ctx);
    }
}
