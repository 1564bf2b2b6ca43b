//! The queue's SQL, assembled for both backends from constant fragments
//! ([`Sql::push`]): which fragments depend on the query, never their
//! text, and every value is a bound parameter. The backends differ in
//! placeholders (`?` or `$n`), in how a list is bound (a JSON array for
//! SQLite's `json_each`, an array for PostgreSQL's `ANY`) and in the
//! search part ([`Dialect`]); the rest is written once here.

use crate::domain::queue::{After, AssigneeFilter, QueueQuery, QueueRow, Sort, SortKey};
use crate::domain::staff::Agent;

use super::common::Row;
use super::{ColType, DumpValue, Named, StoreError, TicketNumber, TicketStatus, format_time};

/// Most matches a relevance-ranked search scores: the most recent ones
/// (by ticket id) that pass the filters. A more specific `q` or a filter
/// reaches older tickets; an explicit `sort` considers every match.
pub(crate) const MAX_RANKED: i64 = 2000;

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// A float (relevance scores).
    Real(f64),
    /// A list of integers (bound as the dialect says).
    Ints(Vec<i64>),
    /// A list of texts (bound as the dialect says).
    Texts(Vec<String>),
}

/// A statement being assembled.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    /// Its text.
    pub text: String,
    /// Its parameters, in placeholder order.
    pub params: Vec<Param>,
    numbered: bool,
}

impl Sql {
    fn new(d: &Dialect) -> Self {
        Sql {
            text: String::with_capacity(1024),
            params: Vec::new(),
            numbered: d.numbered,
        }
    }

    /// Appends a constant fragment; each `?` in it is the next of
    /// `params` (`$n` on PostgreSQL).
    fn push<const N: usize>(&mut self, fragment: &'static str, params: [Param; N]) {
        let mut used = 0;
        for c in fragment.chars() {
            if c == '?' {
                used += 1;
                if self.numbered {
                    self.text.push('$');
                    self.text.push_str(&(self.params.len() + used).to_string());
                    continue;
                }
            }
            self.text.push(c);
        }
        debug_assert_eq!(used, N, "placeholders of {fragment:?}");
        self.params.extend(params);
    }

    /// Appends a constant fragment without placeholders.
    fn push_static(&mut self, fragment: &'static str) {
        self.push(fragment, []);
    }
}

/// What the backends write differently.
pub(crate) struct Dialect {
    /// `$n` placeholders (PostgreSQL) rather than `?` (SQLite).
    pub numbered: bool,
    /// `t.dept_id` is one of a bound list.
    pub dept_in_list: &'static str,
    /// `t.number` is one of a bound list.
    pub number_in_list: &'static str,
    /// Matches of the words query (one `?` bound with
    /// [`Dialect::search_text`]'s text), joined to their ticket `t`: `id`, `score` (lower is better),
    /// `t.updated`.
    pub text_matches: &'static str,
    /// How the outer query joins the matches `s` to `t` (SQLite:
    /// `CROSS JOIN`, which keeps the matches as the outer loop).
    pub search_join: &'static str,
    /// `text_matches`' ticket id column.
    pub text_id: &'static str,
    /// The words query's text for this backend, given who searches and
    /// the queue's filters (an index that knows who may see a ticket
    /// matches them too).
    pub search_text: fn(&crate::domain::search::SearchQuery, &Agent, &QueueQuery) -> Option<String>,
    /// How the matches of a relevance-ranked search are scored after
    /// the most recent [`MAX_RANKED`] were cut (`None`: `text_matches`'
    /// own score is kept).
    pub rescore: Option<Rescore>,
}

/// A score computed over the cut matches `c` (`id`, `score`, `updated`).
#[derive(Clone, Copy)]
pub(crate) struct Rescore {
    /// The score's expression; its two `?` are bound with `texts`.
    pub score: &'static str,
    /// The texts its two placeholders take (the query has words): the
    /// query in the subject, in the names ([`SUBJECT_WEIGHT`],
    /// [`META_WEIGHT`]).
    pub texts: fn(&crate::domain::search::SearchQuery) -> [String; 2],
    /// For a first page whose every filter the index holds
    /// ([`Dialect::search_text`] has them), the steps of [`index_cut`],
    /// run one after another by the backend: the cut read from the index
    /// alone needs no ticket, and only the matches that can reach the
    /// page are looked up for their `updated`.
    pub steps: IndexSteps,
}

/// The statements of a search ranked from the index alone ([`IndexCut`]).
#[derive(Clone, Copy)]
pub(crate) struct IndexSteps {
    /// The newest matches' ids, newest first (`?`: the words query, the
    /// most to read).
    pub cut: &'static str,
    /// The ids at or above a rowid that match a query (`?`: one of
    /// [`Rescore::texts`], the lowest id of the cut).
    pub within: &'static str,
    /// `id`, `updated` of the tickets of a bound list of ids.
    pub updated: &'static str,
    /// The page's `(id, score)` rows from a bound JSON array of pairs;
    /// [`scored_page_sql`] selects the page's rows with them as `s`.
    pub scored: &'static str,
}

/// The score of a match whose words are all in the subject is lowered
/// by this much (lower is better; every match starts at -1).
pub(crate) const SUBJECT_WEIGHT: f64 = 5.0;
/// ... and by this much when they are all in the names and file names.
pub(crate) const META_WEIGHT: f64 = 2.0;

/// A first page of a search ranked by relevance whose every filter the
/// index holds (who may see a ticket, its department, its assignee):
/// the backend reads the newest [`MAX_RANKED`] matches' ids from the
/// index (`text`), the ids among them whose words are in the subject
/// and in the names (`marked`), scores them ([`rank_cut`]), looks up
/// `updated` for those that can reach the page, orders them
/// ([`order_page`]) and selects the page ([`scored_page_sql`]). The
/// same page as [`list_sql`] makes for such a query, without the
/// statement's temporary tables and sorts of 2,000 rows.
#[derive(Clone)]
pub(crate) struct IndexCut {
    /// The words query, with who may see a ticket.
    pub text: String,
    /// The query in the subject, in the names ([`Rescore::texts`]).
    pub marked: [String; 2],
    /// The dialect's statements for it.
    pub steps: IndexSteps,
}

/// The [`IndexCut`] of `q`, when the dialect has one and `q` is such a
/// first page.
pub(crate) fn index_cut(d: &Dialect, viewer: &Agent, q: &QueueQuery) -> Option<IndexCut> {
    if q.after.is_some() {
        return None;
    }
    index_cut_paged(d, viewer, q)
}

/// [`index_cut`] for any page of such a search (a backend that orders
/// the cut after a cursor itself: [`after_cursor`]).
pub(crate) fn index_cut_paged(d: &Dialect, viewer: &Agent, q: &QueueQuery) -> Option<IndexCut> {
    let (search, rescore) = (q.search.as_ref()?, d.rescore?);
    let after_score = matches!(
        q.after,
        None | Some(After {
            key: SortKey::Score(..),
            ..
        })
    );
    let ok = q.sort == Sort::Relevance
        && search.numbers.is_empty()
        && after_score
        && q.status.is_none()
        && q.topic.is_none()
        && q.priority.is_none();
    if !ok {
        return None;
    }
    Some(IndexCut {
        text: (d.search_text)(search, viewer, q)?,
        marked: (rescore.texts)(search),
        steps: rescore.steps,
    })
}

/// The scores of the cut's ids (`cut`), given those of them whose words
/// are in the subject and in the names (any order; ids outside the cut
/// are ignored), and the ones that can reach a page of `limit` rows:
/// scored at least as well as the `limit + 1`-th best (all of them when
/// there are fewer).
pub(crate) fn rank_cut(
    cut: &[i64],
    in_subject: &[i64],
    in_meta: &[i64],
    limit: u32,
) -> Vec<(i64, f64)> {
    let subject: std::collections::HashSet<i64> = in_subject.iter().copied().collect();
    let meta: std::collections::HashSet<i64> = in_meta.iter().copied().collect();
    let scored: Vec<(i64, f64)> = cut
        .iter()
        .map(|id| {
            let mut score = -1.0;
            if subject.contains(id) {
                score -= SUBJECT_WEIGHT;
            }
            if meta.contains(id) {
                score -= META_WEIGHT;
            }
            (*id, score)
        })
        .collect();
    let mut scores: Vec<f64> = scored.iter().map(|(_, s)| *s).collect();
    let keep = limit as usize + 1;
    if scores.len() <= keep {
        return scored;
    }
    let (_, threshold, _) = scores.select_nth_unstable_by(keep - 1, f64::total_cmp);
    let threshold = *threshold;
    scored
        .into_iter()
        .filter(|(_, s)| *s <= threshold)
        .collect()
}

/// Whether a scored match `(score, updated, id)` comes after the cursor
/// `after` in a relevance-ranked search (as [`list_sql`]'s condition
/// says); every match when there is no cursor, none for another sort's.
pub(crate) fn after_cursor(after: Option<&After>, score: f64, updated: &str, id: i64) -> bool {
    match after {
        None => true,
        Some(After {
            key: SortKey::Score(s, t),
            id: last,
        }) => score > *s || (score == *s && (updated < t.as_str() || (updated == t && id < *last))),
        Some(_) => false,
    }
}

/// The page of [`rank_cut`]'s matches, each with its `updated`: by
/// score, then the most recently updated, then the highest id, at most
/// `limit + 1` of them.
pub(crate) fn order_page(mut rows: Vec<(i64, f64, String)>, limit: u32) -> Vec<(i64, f64)> {
    rows.sort_by(|a, b| {
        a.1.total_cmp(&b.1)
            .then_with(|| b.2.cmp(&a.2))
            .then_with(|| b.0.cmp(&a.0))
    });
    rows.truncate(limit as usize + 1);
    rows.into_iter().map(|(id, score, _)| (id, score)).collect()
}

/// Fewest matches worth a walk ([`RecencyWalk::walk_bound`]): fewer are
/// read by id at once.
pub(crate) const WALK_FROM_MATCHES: usize = 200;

/// Reads the `updated` of [`rank_cut`]'s matches that can make the page
/// while tickets are met most recently updated first (then highest id
/// first: the page's own order), so that a backend with an index on
/// `updated` finds the page without looking up every match by id. Up
/// to [`MAX_RANKED`] matches may tie (a phrase found in bodies alone):
/// looked up one by one, 2,000 random seeks were the largest step of
/// such a search (1.2 ms of a 2.5 ms median request for `"access
/// denied"`, one agent, 1,000,000 tickets).
///
/// Matches are grouped by score, best first. The page is decided once,
/// for the groups it takes in order, each group either has all its
/// members met or has met as many as the page still needs: a member not
/// yet met was updated before every ticket met, so it ranks after those
/// met of its group. A walk that stops early (the backend's bound) names
/// the members it still needs read by id ([`RecencyWalk::missing`]).
pub(crate) struct RecencyWalk {
    /// Each match's group, and whether it was met.
    group_of: std::collections::HashMap<i64, (usize, bool)>,
    /// Per group (best score first): its score, members, members met.
    groups: Vec<(f64, usize, usize)>,
    /// The matches met, with their `updated`.
    met: Vec<(i64, f64, String)>,
    /// The page's rows: `limit + 1`.
    need: usize,
}

impl RecencyWalk {
    /// A walk for `matches` ([`rank_cut`]'s) and a page of `limit` rows.
    pub(crate) fn new(matches: &[(i64, f64)], limit: u32) -> Self {
        let mut scores: Vec<f64> = matches.iter().map(|(_, s)| *s).collect();
        scores.sort_by(f64::total_cmp);
        scores.dedup_by(|a, b| a.total_cmp(b).is_eq());
        let mut groups: Vec<(f64, usize, usize)> = scores.iter().map(|s| (*s, 0, 0)).collect();
        let mut group_of = std::collections::HashMap::with_capacity(matches.len());
        for (id, score) in matches {
            // An id twice (never, from an index) keeps its first score.
            if let std::collections::hash_map::Entry::Vacant(e) = group_of.entry(*id) {
                let g = scores.partition_point(|s| s.total_cmp(score).is_lt());
                e.insert((g, false));
                groups[g].1 += 1;
            }
        }
        RecencyWalk {
            group_of,
            groups,
            met: Vec::new(),
            need: limit as usize + 1,
        }
    }

    /// How many tickets a backend should meet at most before reading the
    /// matches still needed by id; `None` when a walk would not pay.
    ///
    /// A ticket met on an index of `updated` costs about half of a match
    /// read by id (a seek from the table's root: 0.5–1.4 µs in searches
    /// at 1,000,000 tickets, 1.0 µs in `sqlite3` for 200,000 spread ids,
    /// against 0.35 µs a row walked there, plus the caller's work per row),
    /// so a walk that fails may meet as many tickets as there are matches
    /// (it then costs under twice the lookups). It is tried when the
    /// matches are many ([`WALK_FROM_MATCHES`]) and dense enough among the
    /// ids they span for the page's rows to be met within that bound:
    /// tickets are mostly updated soon after they are made, so the
    /// newest updated are mostly the newest ids. A phrase whose matches
    /// are spread over the whole history (a sparse scope) is read by id.
    pub(crate) fn walk_bound(&self) -> Option<usize> {
        let n = self.group_of.len();
        let lo = self.group_of.keys().min()?;
        let hi = self.group_of.keys().max()?;
        let span = usize::try_from(hi - lo)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let expected = self.need.saturating_mul(span) / n;
        (n >= WALK_FROM_MATCHES && expected <= n).then_some(n)
    }

    /// A ticket met (in the walk's order, or read by id): kept when it is
    /// one of the matches, the first time it is met.
    pub(crate) fn meet(&mut self, id: i64, updated: &str) {
        if let Some((g, met)) = self.group_of.get_mut(&id)
            && !*met
        {
            *met = true;
            self.groups[*g].2 += 1;
            self.met.push((id, self.groups[*g].0, updated.to_string()));
        }
    }

    /// Whether the page is decided by the matches met so far.
    pub(crate) fn decided(&self) -> bool {
        let mut need = self.need;
        for &(_, members, met) in &self.groups {
            if met >= need {
                return true;
            }
            if met < members {
                return false;
            }
            need -= members;
        }
        true
    }

    /// The matches still to be read by id for the page to be decided:
    /// every member not met of each group the page needs and has not
    /// met enough of.
    pub(crate) fn missing(&self) -> Vec<i64> {
        let mut wanted = vec![false; self.groups.len()];
        let mut need = self.need;
        for (g, &(_, members, met)) in self.groups.iter().enumerate() {
            if met >= need {
                break;
            }
            wanted[g] = met < members;
            need = need.saturating_sub(members);
            if need == 0 {
                break;
            }
        }
        let mut out: Vec<i64> = self
            .group_of
            .iter()
            .filter(|(_, (g, met))| wanted[*g] && !*met)
            .map(|(id, _)| *id)
            .collect();
        out.sort_unstable();
        out
    }

    /// Forgets the matches of `ids` not met (read by id, they had no
    /// ticket): the page is decided without them, as if they had not
    /// matched.
    pub(crate) fn forget_unmet(&mut self, ids: &[i64]) {
        for id in ids {
            if let Some(&(g, false)) = self.group_of.get(id) {
                self.group_of.remove(id);
                self.groups[g].1 -= 1;
            }
        }
    }

    /// The page ([`order_page`] of the matches met).
    pub(crate) fn page(self) -> Vec<(i64, f64)> {
        order_page(self.met, (self.need - 1) as u32)
    }
}

/// The rows of a page whose `(id, score)` pairs were chosen by
/// [`order_page`], filtered and ordered as [`list_sql`] does.
pub(crate) fn scored_page_sql(
    d: &Dialect,
    cut: &IndexCut,
    viewer: &Agent,
    q: &QueueQuery,
    page: &[(i64, f64)],
) -> Sql {
    let mut sql = Sql::new(d);
    let pairs: Vec<serde_json::Value> = page
        .iter()
        .map(|(id, score)| serde_json::json!([id, score]))
        .collect();
    sql.push("WITH s (id, score) AS (", []);
    sql.push(
        cut.steps.scored,
        [Param::Text(serde_json::Value::from(pairs).to_string())],
    );
    sql.push(") ", []);
    push_rows(&mut sql, d, viewer, q, true, true);
    sql
}

/// The columns [`list_sql`] selects, before the score (a float, read by
/// the backend).
pub(crate) const ROW_COLUMNS: &[ColType] = &[
    ColType::Int,  // 0 t.id
    ColType::Text, // 1 number
    ColType::Text, // 2 subject
    ColType::Text, // 3 status
    ColType::Int,  // 4 priority_id
    ColType::Text, // 5 priority_name
    ColType::Int,  // 6 dept_id
    ColType::Text, // 7 dept_name
    ColType::Int,  // 8 topic_id
    ColType::Text, // 9 topic_name
    ColType::Int,  // 10 assignee_id
    ColType::Text, // 11 assignee's name
    ColType::Text, // 12 user's name
    ColType::Text, // 13 user's address
    ColType::Text, // 14 created
    ColType::Text, // 15 updated
    ColType::Text, // 16 last_message_at
    ColType::Int,  // 17 entries
];

/// The permission rule ([`Agent::may_see`]) as a condition on `t`
/// (nothing for an admin).
fn push_visible(sql: &mut Sql, d: &Dialect, viewer: &Agent) {
    if viewer.admin {
        return;
    }
    if viewer.departments.is_empty() {
        sql.push(" AND t.assignee_id = ?", [Param::Int(viewer.id.0)]);
        return;
    }
    sql.push(" AND (", []);
    sql.push(d.dept_in_list, [Param::Ints(viewer.departments.clone())]);
    sql.push(" OR t.assignee_id = ?)", [Param::Int(viewer.id.0)]);
}

/// The filters of `q` and the permission rule, as conditions on `t`.
fn push_filters(sql: &mut Sql, d: &Dialect, viewer: &Agent, q: &QueueQuery) {
    if let Some(status) = q.status {
        sql.push(" AND t.status = ?", [Param::Text(status.as_str().into())]);
    }
    push_visible(sql, d, viewer);
    if let Some(dept) = q.department {
        sql.push(" AND t.dept_id = ?", [Param::Int(dept)]);
    }
    match q.assignee {
        None => {}
        Some(AssigneeFilter::Me) => sql.push(" AND t.assignee_id = ?", [Param::Int(viewer.id.0)]),
        Some(AssigneeFilter::Nobody) => sql.push(" AND t.assignee_id IS NULL", []),
        Some(AssigneeFilter::Agent(a)) => sql.push(" AND t.assignee_id = ?", [Param::Int(a.0)]),
    }
    if let Some(topic) = q.topic {
        sql.push(" AND t.topic_id = ?", [Param::Int(topic)]);
    }
    if let Some(priority) = q.priority {
        sql.push(" AND t.priority_id = ?", [Param::Int(priority)]);
    }
}

/// The page query: up to `limit + 1` rows (the extra one tells that a
/// next page exists).
pub(crate) fn list_sql(d: &Dialect, viewer: &Agent, q: &QueueQuery) -> Sql {
    let mut sql = Sql::new(d);
    let search = q.search.as_ref();
    let text = search.and_then(|s| (d.search_text)(s, viewer, q));
    // Ranked by relevance, only the most recent matches are scored
    // (MAX_RANKED), and the page is cut from them before anything else
    // is joined: a word in a third of a million tickets would otherwise
    // cost a score and a user each.
    let capped = search.is_some() && q.sort == Sort::Relevance;
    if let Some(s) = search {
        let numbers: Vec<String> = s.numbers.iter().map(|n| n.as_str().to_string()).collect();
        // With a `rescore`, the most recent matches are cut first (`c`)
        // and scored after.
        let rescore = match (capped, &text, d.rescore) {
            (true, Some(_), Some(r)) => Some(r),
            _ => None,
        };
        if rescore.is_some() {
            sql.push("WITH c (id, score, updated) AS (", []);
        } else {
            // `m`: the matches (id, score, updated), filtered.
            sql.push("WITH m (id, score, updated) AS (", []);
        }
        if let Some(text) = &text {
            // The filters apply before the cut, so a filtered search
            // still finds its tickets.
            if capped && rescore.is_none() {
                sql.push("SELECT * FROM (", []);
            }
            sql.push(d.text_matches, [Param::Text(text.clone())]);
            push_filters(&mut sql, d, viewer, q);
            if !numbers.is_empty() {
                // A numbered ticket is listed once, ranked first.
                sql.push(" AND ", []);
                sql.push(d.text_id, []);
                sql.push(" NOT IN (SELECT t.id FROM tickets t WHERE ", []);
                sql.push(d.number_in_list, [Param::Texts(numbers.clone())]);
                sql.push(")", []);
            }
            if capped {
                sql.push(" ORDER BY ", []);
                sql.push(d.text_id, []);
                if let Some(r) = rescore {
                    sql.push(" DESC LIMIT ?)", [Param::Int(MAX_RANKED)]);
                    // `m`: the cut matches with their scores.
                    sql.push(", m (id, score, updated) AS (SELECT c.id, ", []);
                    let [a, b] = (r.texts)(s);
                    sql.push(r.score, [Param::Text(a), Param::Text(b)]);
                    sql.push(", c.updated FROM c", []);
                } else {
                    sql.push(" DESC LIMIT ?) c", [Param::Int(MAX_RANKED)]);
                }
            }
        }
        if !numbers.is_empty() {
            if text.is_some() {
                sql.push(" UNION ALL ", []);
            }
            sql.push(
                "SELECT t.id, CAST(-1000000000 AS DOUBLE PRECISION), t.updated FROM tickets t WHERE ",
                [],
            );
            sql.push(d.number_in_list, [Param::Texts(numbers)]);
            push_filters(&mut sql, d, viewer, q);
        }
        sql.push(")", []);
        if capped {
            // `s`: the page, cut from the matches alone.
            sql.push(
                ", s (id, score) AS (SELECT m.id, m.score FROM m WHERE 1 = 1",
                [],
            );
            if let Some(After {
                key: SortKey::Score(score, t),
                id,
            }) = &q.after
            {
                sql.push(
                    " AND m.score >= ?
                      AND (m.score > ? OR m.updated < ? OR (m.updated = ? AND m.id < ?))",
                    [
                        Param::Real(*score),
                        Param::Real(*score),
                        Param::Text(t.clone()),
                        Param::Text(t.clone()),
                        Param::Int(*id),
                    ],
                );
            } else if q.after.is_some() {
                sql.push(" AND 1 = 0", []);
            }
            sql.push(
                " ORDER BY m.score, m.updated DESC, m.id DESC LIMIT ?)",
                [Param::Int(i64::from(q.limit) + 1)],
            );
        } else {
            sql.push(", s (id, score) AS (SELECT m.id, m.score FROM m)", []);
        }
        sql.push(" ", []);
    }
    push_rows(&mut sql, d, viewer, q, search.is_some(), capped);
    sql
}

/// The page's final SELECT: the rows of `t` (with `s`'s score for a
/// search), filtered, in the sort's order.
fn push_rows(
    sql: &mut Sql,
    d: &Dialect,
    viewer: &Agent,
    q: &QueueQuery,
    search: bool,
    capped: bool,
) {
    sql.push(
        "SELECT t.id, t.number, t.subject, t.status, t.priority_id, t.priority_name, t.dept_id,
             t.dept_name, t.topic_id, t.topic_name, t.assignee_id, a.name, u.name, u.email,
             t.created, t.updated, t.last_message_at, t.entries, ",
        [],
    );
    if search {
        sql.push("s.score FROM ", []);
        sql.push(d.search_join, []);
    } else {
        sql.push("CAST(0 AS DOUBLE PRECISION) FROM tickets t", []);
    }
    sql.push(
        " JOIN users u ON u.id = t.user_id LEFT JOIN agents a ON a.id = t.assignee_id WHERE 1 = 1",
        [],
    );
    push_filters(sql, d, viewer, q);
    // Sorts over a relevance score need the search's `s`; without `q`
    // there is none, and relevance is never the sort then.
    let relevance = q.sort == Sort::Relevance && search;
    if let Some(After { key, id }) = &q.after
        && !capped
    {
        push_after(sql, q.sort, key, *id);
    }
    sql.push(
        match q.sort {
            Sort::UpdatedDesc => " ORDER BY t.updated DESC, t.id DESC",
            Sort::UpdatedAsc => " ORDER BY t.updated, t.id",
            Sort::CreatedDesc => " ORDER BY t.created DESC, t.id DESC",
            Sort::CreatedAsc => " ORDER BY t.created, t.id",
            Sort::PriorityDesc => " ORDER BY t.priority_id DESC, t.updated DESC, t.id DESC",
            Sort::Number => " ORDER BY t.number, t.id",
            Sort::Relevance if relevance => " ORDER BY s.score, t.updated DESC, t.id DESC",
            Sort::Relevance => " ORDER BY t.updated DESC, t.id DESC",
        },
        [],
    );
    sql.push_static(page_limit(q.limit));
}

/// The page's `LIMIT`: at least `limit + 1` rows (the extra one tells
/// that a next page exists; [`QueuePage::from_rows`] drops any beyond),
/// written as a constant from a few sizes rather than bound. With a
/// bound `LIMIT` PostgreSQL costs a cached generic plan as if it read a
/// tenth of the matching rows, so it planned the queue anew on every
/// call (0.3 ms, a third of the statement's time at 1M tickets); with a
/// constant the generic plan costs what it reads, and is kept.
///
/// [`QueuePage::from_rows`]: crate::domain::queue::QueuePage::from_rows
pub(crate) fn page_limit(limit: u32) -> &'static str {
    const SIZES: &[(u32, &str)] = &[
        (11, " LIMIT 11"),
        (21, " LIMIT 21"),
        (26, " LIMIT 26"),
        (51, " LIMIT 51"),
        (101, " LIMIT 101"),
    ];
    SIZES
        .iter()
        .find(|(rows, _)| *rows > limit)
        .map_or(" LIMIT 201", |(_, text)| text)
}

/// The rows strictly after the cursor's row in the sort's order. The
/// first condition is a plain range on the sort column (an index range);
/// the second excludes the cursor's row and its earlier ties.
fn push_after(sql: &mut Sql, sort: Sort, key: &SortKey, id: i64) {
    let text = |t: &str| Param::Text(t.to_string());
    match (sort, key) {
        (Sort::UpdatedDesc, SortKey::Time(t)) => sql.push(
            " AND t.updated <= ? AND (t.updated < ? OR t.id < ?)",
            [text(t), text(t), Param::Int(id)],
        ),
        (Sort::UpdatedAsc, SortKey::Time(t)) => sql.push(
            " AND t.updated >= ? AND (t.updated > ? OR t.id > ?)",
            [text(t), text(t), Param::Int(id)],
        ),
        (Sort::CreatedDesc, SortKey::Time(t)) => sql.push(
            " AND t.created <= ? AND (t.created < ? OR t.id < ?)",
            [text(t), text(t), Param::Int(id)],
        ),
        (Sort::CreatedAsc, SortKey::Time(t)) => sql.push(
            " AND t.created >= ? AND (t.created > ? OR t.id > ?)",
            [text(t), text(t), Param::Int(id)],
        ),
        (Sort::PriorityDesc, SortKey::Priority(p, t)) => sql.push(
            " AND t.priority_id <= ?
              AND (t.priority_id < ? OR t.updated < ? OR (t.updated = ? AND t.id < ?))",
            [
                Param::Int(*p),
                Param::Int(*p),
                text(t),
                text(t),
                Param::Int(id),
            ],
        ),
        (Sort::Number, SortKey::Number(n)) => sql.push(
            " AND t.number >= ? AND (t.number > ? OR t.id > ?)",
            [text(n), text(n), Param::Int(id)],
        ),
        // Relevance's cursor applies where its page is cut (`list_sql`).
        // A cursor is decoded for its query's sort (`QueueQuery::parse`).
        _ => sql.push(" AND 1 = 0", []),
    }
}

/// A summary row from [`ROW_COLUMNS`]' values and the score.
pub(crate) fn queue_row(
    values: Vec<DumpValue>,
    score: f64,
    sort: Sort,
) -> Result<QueueRow, StoreError> {
    let r = Row(values);
    let named = |id: usize, name: usize| -> Result<Option<Named>, StoreError> {
        Ok(match r.opt_int(id)? {
            Some(id) => Some(Named {
                id,
                name: r.opt_text(name)?.unwrap_or_default(),
            }),
            None => None,
        })
    };
    let updated = r.time(15)?;
    let key = match sort {
        Sort::UpdatedDesc | Sort::UpdatedAsc => SortKey::Time(r.text(15)?),
        Sort::CreatedDesc | Sort::CreatedAsc => SortKey::Time(r.text(14)?),
        Sort::PriorityDesc => SortKey::Priority(r.int(4)?, r.text(15)?),
        Sort::Number => SortKey::Number(r.text(1)?),
        Sort::Relevance => SortKey::Score(score, r.text(15)?),
    };
    Ok(QueueRow {
        id: r.int(0)?,
        number: TicketNumber::from_stored(r.text(1)?),
        subject: r.text(2)?,
        status: r.parsed(3, TicketStatus::parse)?,
        priority: Named {
            id: r.int(4)?,
            name: r.text(5)?,
        },
        department: named(6, 7)?,
        topic: named(8, 9)?,
        assignee: named(10, 11)?,
        user_name: r.text(12)?,
        user_email: r.text(13)?,
        created: r.time(14)?,
        updated,
        last_message_at: r.time(16).unwrap_or(updated),
        entries: r.int(17)?,
        key,
    })
}

/// The counts in one statement (a round trip and a plan per page, not
/// five): rows of `(part, dept_id, name, n)` read by [`counts_from_rows`],
/// part 0 the open tickets per department (one row each), then one row
/// each for the viewer's, the unassigned, and today's resolved and
/// closed tickets.
pub(crate) fn counts_sql(d: &Dialect, viewer: &Agent, today_start: jiff::Timestamp) -> Sql {
    let today = format_time(today_start);
    let mut sql = Sql::new(d);
    // Open tickets come from `open_counts` (migration 11: kept by
    // triggers as tickets change; 0 is no department, nobody), read
    // as `t` so that the permission rule applies to it as written.
    sql.push(
        "SELECT CAST(0 AS BIGINT) AS part, c.dept_id AS dept,
                (SELECT n.dept_name FROM tickets n WHERE n.dept_id = c.dept_id AND n.status = 'open'
                 ORDER BY n.updated DESC LIMIT 1) AS name,
                c.n AS n
         FROM (SELECT t.dept_id, CAST(sum(t.n) AS BIGINT) AS n FROM open_counts t
               WHERE t.dept_id <> 0",
        [],
    );
    push_visible(&mut sql, d, viewer);
    sql.push(" GROUP BY t.dept_id) c WHERE c.n > 0", []);
    // Assigned to the viewer: visible by the rule itself.
    sql.push(
        " UNION ALL SELECT 1, 0, NULL, CAST(coalesce(sum(t.n), 0) AS BIGINT)
          FROM open_counts t WHERE t.assignee_id = ?",
        [Param::Int(viewer.id.0)],
    );
    sql.push(
        " UNION ALL SELECT 2, 0, NULL, CAST(coalesce(sum(t.n), 0) AS BIGINT)
          FROM open_counts t WHERE t.assignee_id = 0",
        [],
    );
    push_visible(&mut sql, d, viewer);
    for (part, status) in [
        (" UNION ALL SELECT 3,", "resolved"),
        (" UNION ALL SELECT 4,", "closed"),
    ] {
        // `updated` is never before `status_changed` (a status change is
        // a change): its condition lets the (status, updated) index find
        // today's rows.
        sql.push_static(part);
        sql.push(
            " 0, NULL, CAST(count(*) AS BIGINT) FROM tickets t
             WHERE t.status = ? AND t.updated >= ? AND t.status_changed >= ?",
            [
                Param::Text(status.into()),
                Param::Text(today.clone()),
                Param::Text(today.clone()),
            ],
        );
        push_visible(&mut sql, d, viewer);
    }
    sql.push(" ORDER BY 1, 2", []);
    sql
}

/// [`QueueCounts`](crate::domain::queue::QueueCounts) from the rows of
/// [`counts_sql`].
pub(crate) fn counts_from_rows(
    rows: impl IntoIterator<Item = (i64, i64, Option<String>, i64)>,
) -> crate::domain::queue::QueueCounts {
    let mut out = crate::domain::queue::QueueCounts::default();
    for (part, dept, name, n) in rows {
        match part {
            0 => out
                .open_by_department
                .push((dept, name.unwrap_or_default(), n)),
            1 => out.mine = n,
            2 => out.unassigned = n,
            3 => out.resolved_today = n,
            _ => out.closed_today = n,
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::staff::AgentId;

    /// An agent of departments 1 and 2.
    pub(crate) fn viewer() -> Agent {
        Agent {
            id: AgentId(7),
            email: "a@example.com".into(),
            name: "A".into(),
            admin: false,
            active: true,
            departments: vec![1, 2],
        }
    }

    /// The queue query of these query-string pairs.
    pub(crate) fn query(pairs: &[(&str, &str)]) -> QueueQuery {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        QueueQuery::parse(&pairs).unwrap()
    }

    fn dialect(numbered: bool) -> Dialect {
        Dialect {
            numbered,
            dept_in_list: "t.dept_id IN (SELECT value FROM json_each(?))",
            number_in_list: "t.number IN (SELECT value FROM json_each(?))",
            text_matches: "SELECT rowid, 0, t.updated FROM x JOIN tickets t ON t.id = x.rowid WHERE x MATCH ?",
            search_join: "s CROSS JOIN tickets t ON t.id = s.id",
            text_id: "rowid",
            search_text: |s, _, _| s.to_fts5(),
            rescore: None,
        }
    }

    #[test]
    fn a_cut_is_scored_by_where_its_words_are_and_only_what_can_reach_the_page_is_kept() {
        // Ids newest first; 9 and 5 in the subject, 8 and 5 in the names;
        // 42 is not in the cut.
        let cut = [9, 8, 7, 6, 5, 4];
        let scored = rank_cut(&cut, &[5, 9, 42], &[8, 5], 2);
        // Page of 2 (+1): the best three scores are -8 (5), -6 (9), -3
        // (8); everything at least as good as -3 is kept.
        assert_eq!(scored, vec![(9, -6.0), (8, -3.0), (5, -8.0)]);
        // Fewer matches than a page: all of them.
        let all = rank_cut(&cut, &[], &[], 50);
        assert_eq!(all.len(), 6);
        assert!(all.iter().all(|(_, s)| *s == -1.0));
        // Ties at the threshold are all kept (their `updated` decides).
        let ties = rank_cut(&cut, &[9, 8, 7, 6], &[], 1);
        assert_eq!(
            ties.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![9, 8, 7, 6]
        );
        assert!(rank_cut(&[], &[1], &[1], 10).is_empty());
    }

    #[test]
    fn a_page_is_ordered_by_score_then_last_update_then_id() {
        let t = |s: &str| s.to_string();
        let rows = vec![
            (1, -1.0, t("2026-01-03T00:00:00Z")),
            (2, -6.0, t("2026-01-01T00:00:00Z")),
            (3, -6.0, t("2026-01-02T00:00:00Z")),
            (4, -6.0, t("2026-01-02T00:00:00Z")),
            (5, -8.0, t("2025-01-01T00:00:00Z")),
        ];
        assert_eq!(
            order_page(rows.clone(), 10),
            vec![(5, -8.0), (4, -6.0), (3, -6.0), (2, -6.0), (1, -1.0)]
        );
        // At most limit + 1 rows.
        assert_eq!(order_page(rows, 2), vec![(5, -8.0), (4, -6.0), (3, -6.0)]);
    }

    #[test]
    fn the_page_limit_reads_one_row_more_than_the_page_from_a_few_constants() {
        use crate::domain::queue::MAX_LIMIT;
        let mut texts = std::collections::BTreeSet::new();
        for limit in 1..=MAX_LIMIT {
            let text = page_limit(limit);
            let rows: u32 = text.trim_start_matches(" LIMIT ").parse().unwrap();
            assert!(rows > limit, "{limit}: {text}");
            assert!(rows <= limit * 2 + 9, "{limit}: {text}");
            texts.insert(text);
        }
        assert_eq!(page_limit(50), " LIMIT 51");
        assert_eq!(texts.len(), 6);
        // The default page reads exactly one row more than it shows.
        let sql = list_sql(&dialect(false), &viewer(), &query(&[("status", "open")]));
        assert!(sql.text.ends_with(" LIMIT 51"), "{}", sql.text);
    }

    #[test]
    fn placeholders_follow_the_parameters_and_input_never_enters_the_text() {
        let viewer = viewer();
        let q = query(&[
            ("q", "printer' OR 1=1 --"),
            ("department", "2"),
            ("assignee", "none"),
        ]);
        for numbered in [false, true] {
            let sql = list_sql(&dialect(numbered), &viewer, &q);
            assert!(!sql.text.contains("printer"), "{}", sql.text);
            let placeholders = if numbered {
                sql.text.matches('$').count()
            } else {
                sql.text.matches('?').count()
            };
            assert_eq!(placeholders, sql.params.len(), "{}", sql.text);
            if numbered {
                assert!(sql.text.contains(&format!("${}", sql.params.len())));
            }
        }
    }

    /// Tickets `(id, updated)` met by a walk in its order: most
    /// recently updated first, then the highest id.
    fn walk_order(mut tickets: Vec<(i64, String)>) -> Vec<(i64, String)> {
        tickets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        tickets
    }

    /// The page a walk decides, having met `tickets` in order until it
    /// was decided or `bound` of them were met, then read the missing
    /// matches by id (from `updated_of`).
    fn walked_page(
        matches: &[(i64, f64)],
        tickets: &[(i64, String)],
        bound: usize,
        limit: u32,
    ) -> Vec<(i64, f64)> {
        let mut walk = RecencyWalk::new(matches, limit);
        for (id, updated) in tickets.iter().take(bound) {
            if walk.decided() {
                break;
            }
            walk.meet(*id, updated);
        }
        if !walk.decided() {
            for id in walk.missing() {
                let (_, updated) = tickets.iter().find(|(t, _)| *t == id).unwrap();
                walk.meet(id, updated);
            }
        }
        assert!(walk.decided());
        walk.page()
    }

    #[test]
    fn a_walk_by_recency_stopped_anywhere_gives_the_page_every_match_read_gives() {
        // Tickets 1..=120, updated in a shuffled order with ties; every
        // third one matches, in three tiers of score.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let tickets: Vec<(i64, String)> = (1..=120)
            .map(|id| (id, format!("2026-01-01T00:{:02}:00Z", next() % 40)))
            .collect();
        let matches: Vec<(i64, f64)> = tickets
            .iter()
            .filter(|(id, _)| id % 3 == 0)
            .map(|(id, _)| {
                let score = match next() % 10 {
                    0 => -8.0,
                    1..=2 => -6.0,
                    _ => -1.0,
                };
                (*id, score)
            })
            .collect();
        let order = walk_order(tickets.clone());
        // Every page size up to past the matches: each tier's boundary.
        for limit in 0u32..=42 {
            let all: Vec<(i64, f64, String)> = matches
                .iter()
                .map(|(id, s)| {
                    let updated = &tickets[(*id - 1) as usize].1;
                    (*id, *s, updated.clone())
                })
                .collect();
            let expected = order_page(all, limit);
            assert_eq!(expected.len(), (limit as usize + 1).min(matches.len()));
            for bound in 0..=order.len() {
                assert_eq!(
                    walked_page(&matches, &order, bound, limit),
                    expected,
                    "limit {limit}, stopped after {bound} tickets"
                );
            }
        }
    }

    #[test]
    fn a_walk_is_decided_by_whole_better_tiers_and_enough_of_the_next() {
        // Two matches scored -6, three scored -1; a page of 2 rows needs 3.
        let matches = [(1, -6.0), (2, -1.0), (3, -1.0), (4, -6.0), (5, -1.0)];
        let mut walk = RecencyWalk::new(&matches, 2);
        assert!(!walk.decided());
        assert_eq!(walk.missing(), vec![1, 2, 3, 4, 5]);
        walk.meet(9, "2026-01-09"); // not a match
        walk.meet(5, "2026-01-08");
        walk.meet(4, "2026-01-07");
        // The -6 tier lacks ticket 1; the newest of the -1 tier, which is
        // all the page needs of it, was met.
        assert!(!walk.decided());
        assert_eq!(walk.missing(), vec![1]);
        walk.meet(4, "2026-01-07"); // met twice: counted once
        walk.meet(1, "2026-01-01");
        // Both -6 matches met, and one of the -1 tier, all the page needs.
        assert!(walk.decided());
        assert_eq!(walk.missing(), Vec::<i64>::new());
        assert_eq!(walk.page(), vec![(4, -6.0), (1, -6.0), (5, -1.0)]);
        // A better tier with enough members decides alone.
        let mut walk = RecencyWalk::new(&matches, 0);
        walk.meet(4, "2026-01-07");
        assert!(walk.decided());
        assert_eq!(walk.page(), vec![(4, -6.0)]);
    }

    #[test]
    fn a_match_without_a_ticket_is_forgotten_and_an_id_twice_counts_once() {
        // Ticket 2 matched but has no row: the page takes the next one.
        let matches = [(1, -1.0), (2, -1.0), (3, -1.0), (4, -1.0)];
        let mut walk = RecencyWalk::new(&matches, 1);
        walk.meet(4, "2026-01-04");
        let missing = walk.missing();
        assert_eq!(missing, vec![1, 2, 3]);
        walk.meet(1, "2026-01-01");
        walk.meet(3, "2026-01-03");
        assert!(walk.decided(), "met enough of the tier");
        let mut walk = RecencyWalk::new(&matches, 2);
        walk.meet(4, "2026-01-04");
        walk.meet(1, "2026-01-01");
        assert!(!walk.decided());
        walk.forget_unmet(&[1, 2]);
        assert!(!walk.decided(), "ticket 3 is still to be read");
        assert_eq!(walk.missing(), vec![3]);
        walk.meet(3, "2026-01-03");
        assert!(walk.decided());
        assert_eq!(walk.page(), vec![(4, -1.0), (3, -1.0), (1, -1.0)]);
        // An id given twice keeps its first score and counts once.
        let mut walk = RecencyWalk::new(&[(5, -6.0), (5, -1.0), (6, -1.0)], 0);
        walk.meet(5, "2026-01-05");
        assert!(walk.decided());
        assert_eq!(walk.page(), vec![(5, -6.0)]);
    }

    #[test]
    fn a_walk_is_tried_for_many_matches_dense_among_the_ids_they_span() {
        let dense: Vec<(i64, f64)> = (1000..1000 + WALK_FROM_MATCHES as i64)
            .map(|id| (id, -1.0))
            .collect();
        assert_eq!(
            RecencyWalk::new(&dense, 50).walk_bound(),
            Some(WALK_FROM_MATCHES)
        );
        // One fewer match: read by id.
        assert_eq!(RecencyWalk::new(&dense[1..], 50).walk_bound(), None);
        // As many, spread so that 51 rows would take more tickets than
        // there are matches to meet.
        let n = WALK_FROM_MATCHES as i64;
        let spread: Vec<(i64, f64)> = (0..n).map(|i| (1 + i * (n / 51 + 1), -1.0)).collect();
        assert_eq!(RecencyWalk::new(&spread, 50).walk_bound(), None);
        let spread: Vec<(i64, f64)> = (0..n).map(|i| (1 + i * (n / 51), -1.0)).collect();
        assert_eq!(RecencyWalk::new(&spread, 50).walk_bound(), Some(200));
        assert_eq!(RecencyWalk::new(&[], 50).walk_bound(), None);
    }
}
