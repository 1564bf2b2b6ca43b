//! The queue (STAFF-API.md, `GET /api/v1/tickets` and `GET
//! /api/v1/queues`) as types: filters, sorts, the keyset cursor, a
//! summary row, the side bar's counts. Parsed once from the query
//! string; the stores apply it (and the permission rule of
//! [`Agent::may_see`](super::staff::Agent::may_see)) in SQL.
//!
//! The cursor is opaque to clients: base64url of
//! `v1|sort|query-hash|key…|id`, the sort key and ticket id of the last
//! row of a page. The next page is the rows strictly after that key in
//! the sort's order (ties broken by id), so rows are neither repeated
//! nor skipped however many share an `updated` time. The query hash ties
//! a cursor to the filters it was made for: used with others it is a
//! `400` naming `cursor`, like one that does not decode.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;

use super::DomainError;
use super::search::SearchQuery;
use super::staff::AgentId;
use super::views::{Named, TicketNumber, TicketStatus};

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most rows per page.
pub const MAX_LIMIT: u32 = 200;

/// Whose tickets (`assignee`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// The viewer's (`me`).
    Me,
    /// Nobody's (`none`).
    Nobody,
    /// This agent's.
    Agent(AgentId),
}

/// The order of a page (`sort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// `-updated` (the default without `q`): last changed first.
    UpdatedDesc,
    /// `updated`.
    UpdatedAsc,
    /// `-created`: newest first.
    CreatedDesc,
    /// `created`.
    CreatedAsc,
    /// `-priority`: most urgent (highest priority id, as osTicket's stock
    /// Low 1 … Emergency 4) first, then last changed first.
    PriorityDesc,
    /// `number`: ascending.
    Number,
    /// With `q` and no `sort` given: best match first, then last changed.
    Relevance,
}

impl Sort {
    /// The `sort` values a request may give (relevance is `q`'s default
    /// and has no name).
    pub const NAMED: &[(&str, Sort)] = &[
        ("-updated", Sort::UpdatedDesc),
        ("updated", Sort::UpdatedAsc),
        ("-created", Sort::CreatedDesc),
        ("created", Sort::CreatedAsc),
        ("-priority", Sort::PriorityDesc),
        ("number", Sort::Number),
    ];

    fn code(self) -> &'static str {
        match self {
            Sort::UpdatedDesc => "u-",
            Sort::UpdatedAsc => "u+",
            Sort::CreatedDesc => "c-",
            Sort::CreatedAsc => "c+",
            Sort::PriorityDesc => "p-",
            Sort::Number => "n+",
            Sort::Relevance => "r",
        }
    }

    /// Whether the first key descends (relevance: best first).
    pub fn is_descending(self) -> bool {
        !matches!(self, Sort::UpdatedAsc | Sort::CreatedAsc | Sort::Number)
    }
}

/// Where a page starts: strictly after this row in the sort's order.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    /// The sort key of the last row shown.
    pub key: SortKey,
    /// Its ticket id (the tie-break).
    pub id: i64,
}

/// A row's position in its sort (what a cursor carries).
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// `updated` or `created` (RFC 3339 text as stored).
    Time(String),
    /// `-priority`: the priority id, then `updated`.
    Priority(i64, String),
    /// `number`.
    Number(String),
    /// Relevance: the store's score (lower is better: SQLite's is the
    /// negated weight of the columns that match, PostgreSQL's the negated
    /// rank), then `updated`.
    Score(f64, String),
}

/// The queue's query, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueQuery {
    /// `None`: any status.
    pub status: Option<TicketStatus>,
    /// Department id.
    pub department: Option<i64>,
    /// Assignee.
    pub assignee: Option<AssigneeFilter>,
    /// Help topic id.
    pub topic: Option<i64>,
    /// Priority id.
    pub priority: Option<i64>,
    /// Full-text search.
    pub search: Option<SearchQuery>,
    /// Order.
    pub sort: Sort,
    /// Rows per page (1–[`MAX_LIMIT`]).
    pub limit: u32,
    /// The page after this row.
    pub after: Option<After>,
    /// Hash of the filters, sort and `q` (ties cursors to their query).
    hash: u32,
}

fn invalid(field: &str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn parse_id(field: &str, value: &str) -> Result<i64, DomainError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(field, format!("not an id: {value:?}")))
}

/// FNV-1a, 32 bits: stable across builds (unlike `std`'s hasher).
fn fnv1a(parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

impl QueueQuery {
    /// The default queue: open tickets, last changed first, 50 a page.
    pub fn new() -> Self {
        Self::parse(&[]).unwrap_or_else(|_| unreachable!("the empty query parses"))
    }

    /// Parses the query string's pairs. Unknown names are ignored (as
    /// Zammad does); a known name given twice, or a value that does not
    /// parse, is an error naming it.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, DomainError> {
        let known = [
            "status",
            "department",
            "assignee",
            "topic",
            "priority",
            "q",
            "sort",
            "limit",
            "cursor",
        ];
        let mut seen: Vec<&str> = Vec::new();
        let mut get = |name: &'static str| -> Result<Option<&str>, DomainError> {
            let mut found = None;
            for (k, v) in pairs {
                if k == name {
                    if found.is_some() {
                        return Err(invalid(name, "given more than once"));
                    }
                    found = Some(v.as_str());
                }
            }
            seen.push(name);
            Ok(found)
        };
        let status_text = get("status")?.unwrap_or("open");
        let status = match status_text {
            "any" => None,
            s => Some(TicketStatus::parse(s).ok_or_else(|| {
                invalid(
                    "status",
                    format!("must be open, resolved, closed or any, not {s:?}"),
                )
            })?),
        };
        let department_text = get("department")?;
        let department = department_text
            .map(|v| parse_id("department", v))
            .transpose()?;
        let assignee_text = get("assignee")?;
        let assignee = match assignee_text {
            None => None,
            Some("me") => Some(AssigneeFilter::Me),
            Some("none") => Some(AssigneeFilter::Nobody),
            Some(v) => Some(AssigneeFilter::Agent(AgentId(
                parse_id("assignee", v).map_err(|_| {
                    invalid(
                        "assignee",
                        format!("must be me, none or an agent id, not {v:?}"),
                    )
                })?,
            ))),
        };
        let topic_text = get("topic")?;
        let topic = topic_text.map(|v| parse_id("topic", v)).transpose()?;
        let priority_text = get("priority")?;
        let priority = priority_text.map(|v| parse_id("priority", v)).transpose()?;
        let q_text = get("q")?.unwrap_or("");
        let search = SearchQuery::parse(q_text)?;
        let sort_text = get("sort")?;
        let sort = match sort_text {
            Some(s) => Sort::NAMED
                .iter()
                .find(|(name, _)| *name == s)
                .map(|(_, sort)| *sort)
                .ok_or_else(|| {
                    let names: Vec<&str> = Sort::NAMED.iter().map(|(n, _)| *n).collect();
                    invalid("sort", format!("must be one of {}", names.join(", ")))
                })?,
            None if search.is_some() => Sort::Relevance,
            None => Sort::UpdatedDesc,
        };
        let limit = match get("limit")? {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| invalid("limit", format!("must be 1 to {MAX_LIMIT}")))?,
        };
        let cursor = get("cursor")?;
        debug_assert!(known.iter().all(|k| seen.contains(k)));
        let hash = fnv1a(&[
            status_text,
            department_text.unwrap_or(""),
            assignee_text.unwrap_or(""),
            topic_text.unwrap_or(""),
            priority_text.unwrap_or(""),
            q_text,
            sort.code(),
        ]);
        let mut query = QueueQuery {
            status,
            department,
            assignee,
            topic,
            priority,
            search,
            sort,
            limit,
            after: None,
            hash,
        };
        if let Some(c) = cursor.filter(|c| !c.is_empty()) {
            query.after = Some(query.decode_cursor(c)?);
        }
        Ok(query)
    }

    /// The cursor of the page after `row` (the last row of a page).
    pub fn cursor_after(&self, key: &SortKey, id: i64) -> String {
        let key = match key {
            SortKey::Time(t) => t.clone(),
            SortKey::Priority(p, t) => format!("{p}|{t}"),
            SortKey::Number(n) => n.clone(),
            SortKey::Score(s, t) => format!("{:016x}|{t}", s.to_bits()),
        };
        let text = format!("v1|{}|{:08x}|{key}|{id}", self.sort.code(), self.hash);
        URL_SAFE_NO_PAD.encode(text)
    }

    fn decode_cursor(&self, cursor: &str) -> Result<After, DomainError> {
        let bad = || {
            invalid(
                "cursor",
                "not a cursor of this queue (start again without it)",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let parts: Vec<&str> = text.split('|').collect();
        let (head, rest) = parts.split_at_checked(3).ok_or_else(bad)?;
        if head[0] != "v1" || head[1] != self.sort.code() || head[2] != format!("{:08x}", self.hash)
        {
            return Err(bad());
        }
        let time = |t: &str| -> Result<String, DomainError> {
            t.parse::<Timestamp>().map_err(|_| bad())?;
            Ok(t.to_string())
        };
        let (key, id) = match (self.sort, rest) {
            (
                Sort::UpdatedDesc | Sort::UpdatedAsc | Sort::CreatedDesc | Sort::CreatedAsc,
                [t, id],
            ) => (SortKey::Time(time(t)?), id),
            (Sort::PriorityDesc, [p, t, id]) => (
                SortKey::Priority(p.parse().map_err(|_| bad())?, time(t)?),
                id,
            ),
            (Sort::Number, [n, id]) => (
                SortKey::Number(TicketNumber::parse(n).ok_or_else(bad)?.as_str().to_string()),
                id,
            ),
            (Sort::Relevance, [s, t, id]) => {
                let bits = u64::from_str_radix(s, 16).map_err(|_| bad())?;
                let score = f64::from_bits(bits);
                if !score.is_finite() {
                    return Err(bad());
                }
                (SortKey::Score(score, time(t)?), id)
            }
            _ => return Err(bad()),
        };
        let id = id.parse::<i64>().map_err(|_| bad())?;
        Ok(After { key, id })
    }
}

impl Default for QueueQuery {
    fn default() -> Self {
        Self::new()
    }
}

/// A summary row of the queue (STAFF-API.md, A summary row).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    /// Row id (the cursor's tie-break; never shown).
    pub id: i64,
    /// Number.
    pub number: TicketNumber,
    /// Subject.
    pub subject: String,
    /// Status.
    pub status: TicketStatus,
    /// Priority.
    pub priority: Named,
    /// Department.
    pub department: Option<Named>,
    /// Help topic.
    pub topic: Option<Named>,
    /// Assigned agent (id, name).
    pub assignee: Option<Named>,
    /// The user's name.
    pub user_name: String,
    /// The user's address.
    pub user_email: String,
    /// Created.
    pub created: Timestamp,
    /// Last change of any kind.
    pub updated: Timestamp,
    /// The user's last message.
    pub last_message_at: Timestamp,
    /// Thread entries.
    pub entries: i64,
    /// Its position in the page's sort.
    pub key: SortKey,
}

/// One page of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePage {
    /// Up to `limit` rows.
    pub rows: Vec<QueueRow>,
    /// The next page's cursor; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl QueuePage {
    /// A page from up to `limit + 1` rows a store read: the extra row
    /// only tells that there is a next page.
    pub fn from_rows(query: &QueueQuery, mut rows: Vec<QueueRow>) -> Self {
        let more = rows.len() > query.limit as usize;
        rows.truncate(query.limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(query.cursor_after(&last.key, last.id)),
            _ => None,
        };
        QueuePage { rows, next_cursor }
    }
}

/// The side bar's counts, all within what the viewer may see.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueCounts {
    /// Open tickets per department (id, name, count), by id; tickets of
    /// no department are left out.
    pub open_by_department: Vec<(i64, String, i64)>,
    /// Open tickets assigned to the viewer.
    pub mine: i64,
    /// Open tickets assigned to nobody.
    pub unassigned: i64,
    /// Resolved since the start of today.
    pub resolved_today: i64,
    /// Closed since the start of today.
    pub closed_today: i64,
}

/// The start of the day `now` falls in, in the helpdesk's time zone
/// (`timezone` in the configuration; UTC by default).
pub fn start_of_day(now: Timestamp, tz: &jiff::tz::TimeZone) -> Timestamp {
    let zoned = now.to_zoned(tz.clone());
    zoned.start_of_day().map(|z| z.timestamp()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(list: &[(&str, &str)]) -> Result<QueueQuery, DomainError> {
        QueueQuery::parse(&pairs(list))
    }

    #[test]
    fn defaults_are_open_last_changed_first_fifty() {
        let q = parse(&[]).unwrap();
        assert_eq!(q.status, Some(TicketStatus::Open));
        assert_eq!(
            (q.sort, q.limit, q.after.clone()),
            (Sort::UpdatedDesc, 50, None)
        );
        assert_eq!(parse(&[("q", "printer")]).unwrap().sort, Sort::Relevance);
        assert_eq!(
            parse(&[("q", "printer"), ("sort", "number")]).unwrap().sort,
            Sort::Number
        );
        assert_eq!(parse(&[("status", "any")]).unwrap().status, None);
        assert_eq!(
            parse(&[("assignee", "me"), ("x", "ignored")])
                .unwrap()
                .assignee,
            Some(AssigneeFilter::Me)
        );
        assert_eq!(
            parse(&[("assignee", "12")]).unwrap().assignee,
            Some(AssigneeFilter::Agent(AgentId(12)))
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        for (name, value) in [
            ("status", "pending"),
            ("department", "x"),
            ("department", "-1"),
            ("assignee", "someone"),
            ("topic", "1.5"),
            ("priority", ""),
            ("sort", "subject"),
            ("limit", "0"),
            ("limit", "201"),
            ("cursor", "!!"),
            ("cursor", "djF8dS18MHwwfDA"),
            ("q", "-only"),
        ] {
            let e = parse(&[(name, value)]).unwrap_err();
            assert_eq!(e.field(), name, "{name}={value}");
        }
        let e = parse(&[("limit", "5"), ("limit", "6")]).unwrap_err();
        assert_eq!(e.field(), "limit");
    }

    #[test]
    fn cursors_round_trip_and_belong_to_their_query() {
        let cases = [
            (vec![], SortKey::Time("2027-01-15T08:00:00Z".into())),
            (
                vec![("sort", "-priority")],
                SortKey::Priority(3, "2027-01-15T08:00:00Z".into()),
            ),
            (vec![("sort", "number")], SortKey::Number("123456".into())),
            (
                vec![("q", "printer")],
                SortKey::Score(-1.25, "2027-01-15T08:00:00Z".into()),
            ),
        ];
        for (list, key) in cases {
            let q = parse(&list).unwrap();
            let c = q.cursor_after(&key, 42);
            let mut with = list.clone();
            with.push(("cursor", &c));
            let again = parse(&with).unwrap();
            assert_eq!(again.after, Some(After { key, id: 42 }));
            // Another query's cursor is refused.
            let mut other = list.clone();
            other.push(("department", "9"));
            other.push(("cursor", &c));
            assert_eq!(parse(&other).unwrap_err().field(), "cursor");
        }
        // Tampered: a valid encoding of nonsense.
        let forged = URL_SAFE_NO_PAD.encode("v1|u-|00000000|yesterday|1");
        assert_eq!(parse(&[("cursor", &forged)]).unwrap_err().field(), "cursor");
    }

    #[test]
    fn today_starts_at_midnight_in_the_helpdesk_zone() {
        let now: Timestamp = "2027-01-15T08:30:00Z".parse().unwrap();
        assert_eq!(
            start_of_day(now, &jiff::tz::TimeZone::UTC).to_string(),
            "2027-01-15T00:00:00Z"
        );
        let tokyo = jiff::tz::TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(
            start_of_day(now, &tokyo).to_string(),
            "2027-01-14T15:00:00Z"
        );
    }
}
