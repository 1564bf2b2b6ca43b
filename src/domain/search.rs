//! Full-text search (STAFF-API.md, Full-text search): how text becomes
//! index words and how `q` becomes a query, decided once for both
//! backends.
//!
//! Both sides go through [`words`]: text is folded (lower case, no
//! diacritics: `Café` is `cafe`), cut into runs of letters and digits,
//! and every Han, Kana or Hangul character is a word of its own, because
//! Chinese and Japanese are written without spaces: `印刷できません` is
//! indexed as seven words and the query `印刷` becomes the phrase
//! `"印 刷"`, which finds it. The stores index the space-joined words
//! ([`index_text`]) with a tokenizer that only splits on spaces (SQLite
//! FTS5 `ascii`, PostgreSQL's `simple` configuration), so both backends
//! see exactly these words.
//!
//! This module decides words and queries; it must not know SQL beyond
//! rendering a parsed query in the two match languages.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use super::DomainError;
use super::ids::TicketNumber;
use super::queue::AssigneeFilter;
use super::staff::{Agent, AgentId};

/// Longest `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// Most terms (words, phrases, exclusions) in `q`.
pub const MAX_TERMS: usize = 12;
/// Most words in one phrase (a CJK term is a phrase of its characters).
pub const MAX_PHRASE_WORDS: usize = 32;
/// Longest indexed word, in characters: longer runs (base64, hashes) are
/// cut, the same way at index and query time.
pub const MAX_WORD_CHARS: usize = 64;
/// Index text kept per entry (and per subject, name list), in bytes:
/// bounds a ticket's index row (PostgreSQL refuses a `tsvector` over
/// 1 MB). A body longer than that is found by its beginning.
pub const MAX_INDEX_BYTES_PER_PART: usize = 32 * 1024;

/// Han, Kana and Hangul: scripts written without spaces between words,
/// indexed one character per word.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF          // Hiragana, Katakana
        | 0x31F0..=0x31FF        // Katakana phonetic extensions
        | 0x3400..=0x4DBF        // CJK extension A
        | 0x4E00..=0x9FFF        // CJK unified ideographs
        | 0xAC00..=0xD7AF        // Hangul syllables
        | 0x1100..=0x11FF        // Hangul jamo
        | 0x3130..=0x318F        // Hangul compatibility jamo
        | 0xF900..=0xFAFF        // CJK compatibility ideographs
        | 0xFF66..=0xFF9F        // half-width Katakana
        | 0x20000..=0x2FA1F) // CJK extensions B–F, compatibility supplement
}

/// Letters without a decomposition that people type without their mark.
fn fold_special(c: char, out: &mut impl FnMut(char)) -> bool {
    let s: &str = match c {
        'ß' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'ø' | 'Ø' => "o",
        'đ' | 'Đ' | 'ð' | 'Ð' => "d",
        'ł' | 'Ł' => "l",
        'ı' => "i",
        'þ' | 'Þ' => "th",
        _ => return false,
    };
    s.chars().for_each(out);
    true
}

/// Calls `out` with the folded form of `c`: compatibility decomposition
/// without combining marks, lower case. CJK is left as it is (NFKD would
/// split Hangul syllables and strip Kana's voicing marks).
fn fold_char(c: char, out: &mut impl FnMut(char)) {
    if c.is_ascii() {
        out(c.to_ascii_lowercase());
        return;
    }
    if is_cjk(c) || fold_special(c, out) {
        if is_cjk(c) {
            out(c);
        }
        return;
    }
    decompose_compatible(c, |d| {
        if !is_combining_mark(d) && !fold_special(d, out) {
            d.to_lowercase().for_each(&mut *out);
        }
    });
}

/// The words of `text`, folded, in order: runs of letters and digits,
/// each CJK character alone. Calls `word` with each; a word is never
/// empty and has at most [`MAX_WORD_CHARS`] characters.
pub fn for_each_word(text: &str, mut word: impl FnMut(&str)) {
    let mut current = String::new();
    let mut chars = 0usize;
    let flush = |current: &mut String, chars: &mut usize, word: &mut dyn FnMut(&str)| {
        if !current.is_empty() {
            word(current);
            current.clear();
        }
        *chars = 0;
    };
    for c in text.chars() {
        // Most text is ASCII: folded by a lower-casing, no table lookups.
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                if chars < MAX_WORD_CHARS {
                    current.push(c.to_ascii_lowercase());
                    chars += 1;
                }
            } else {
                flush(&mut current, &mut chars, &mut word);
            }
            continue;
        }
        let mut pending: [char; 8] = ['\0'; 8];
        let mut n = 0;
        fold_char(c, &mut |f| {
            if n < pending.len() {
                pending[n] = f;
                n += 1;
            }
        });
        for &f in &pending[..n] {
            if is_cjk(f) {
                flush(&mut current, &mut chars, &mut word);
                let mut buf = [0u8; 4];
                word(f.encode_utf8(&mut buf));
            } else if f.is_alphanumeric() {
                if chars < MAX_WORD_CHARS {
                    current.push(f);
                    chars += 1;
                }
            } else {
                flush(&mut current, &mut chars, &mut word);
            }
        }
    }
    flush(&mut current, &mut chars, &mut word);
}

/// The words of `text` (see [`for_each_word`]).
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(text, |w| out.push(w.to_string()));
    out
}

/// Appends the words of `text` to `out`, space-separated, stopping at
/// [`MAX_INDEX_BYTES_PER_PART`] bytes of this part.
pub fn push_index_text(out: &mut String, text: &str) {
    let start = out.len();
    for_each_word(text, |w| {
        if out.len() - start + w.len() + 1 > MAX_INDEX_BYTES_PER_PART {
            return;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    });
}

/// A column of an index that holds, after its words, a copy of each
/// marked with the column (SQLite's FTS5, migration 16): ranking asks
/// whether a match's words are in the subject or in the names by
/// looking for the marked copy ([`SearchQuery::to_fts5_marked`]), whose
/// doclists hold that column's occurrences alone, instead of filtering
/// every occurrence by column. A mark ends in `_`, which the index keeps
/// inside a token and [`words`] never yields: typed words cannot match a
/// marked copy, nor a marked copy typed words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The subject's words.
    Subject,
    /// The user's name and address, attachment names.
    Meta,
}

impl Mark {
    /// What starts a marked copy of a word.
    pub fn prefix(self) -> &'static str {
        match self {
            Mark::Subject => "s_",
            Mark::Meta => "m_",
        }
    }
}

/// `words` (space-joined, as [`push_index_text`] makes them), then each
/// of them again with `mark`'s prefix: `printer jam s_printer s_jam`.
pub fn marked_copy(words: &str, mark: Mark) -> String {
    let count = words.split(' ').filter(|w| !w.is_empty()).count();
    let mut out = String::with_capacity(2 * words.len() + count * (mark.prefix().len() + 1));
    out.push_str(words);
    for w in words.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(mark.prefix());
        out.push_str(w);
    }
    out
}

/// Index text of several parts (space-joined words).
pub fn index_text<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for p in parts {
        push_index_text(&mut out, p);
    }
    out
}

/// The text of an entry body for the index: HTML bodies lose their tags
/// (and decode their entities); text is taken as it is.
pub fn body_text(body: &str, is_html: bool) -> std::borrow::Cow<'_, str> {
    if is_html {
        std::borrow::Cow::Owned(html_to_text(body))
    } else {
        std::borrow::Cow::Borrowed(body)
    }
}

/// `rest` from the first `</name` (any case), or empty: one pass over
/// what it skips (lower-casing the whole rest at every `<style>` made
/// many such tags quadratic).
fn skip_to_close<'a>(rest: &'a str, name: &str) -> &'a str {
    let bytes = rest.as_bytes();
    let mut from = 0;
    while let Some(i) = rest[from..].find("</") {
        let at = from + i;
        let tail = &bytes[at + 2..];
        if tail.len() >= name.len() && tail[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return &rest[at..];
        }
        from = at + 2;
    }
    ""
}

/// The words of sanitised HTML: tags become spaces, the contents of
/// `style` and `script` are dropped, character references decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('<') {
            // Up to the `>`, or to the end of an unclosed tag (never
            // inside a character: `rest` starts with the one-byte `<`).
            let close = rest.find('>');
            let tag = rest[1..close.unwrap_or(rest.len())].to_ascii_lowercase();
            rest = &rest[close.map_or(rest.len(), |e| e + 1)..];
            for skipped in ["style", "script"] {
                if tag.starts_with(skipped) {
                    rest = skip_to_close(rest, skipped);
                }
            }
            out.push(' ');
        } else {
            let end = rest[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
                .map(|e| e + 1);
            let decoded = match end {
                Some(e) if rest[e..].starts_with(';') => decode_entity(&rest[1..e]).map(|c| (c, e)),
                _ => None,
            };
            match decoded {
                Some((c, e)) => {
                    // `&#0;` and the like decode to nothing storable.
                    if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                        out.push(' ');
                    } else {
                        out.push(c);
                    }
                    rest = &rest[e + 1..];
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let n = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(n);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        _ => return None,
    })
}

/// Words that must appear one after the other; the last may be a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    /// Folded words (one for a plain word).
    pub words: Vec<String>,
    /// The last word is a prefix (`print*`).
    pub prefix: bool,
}

impl Phrase {
    /// Each word, with whether it is a prefix (the last one of a prefix
    /// phrase).
    fn each_word(&self) -> impl Iterator<Item = (&str, bool)> {
        let last = self.words.len().saturating_sub(1);
        self.words
            .iter()
            .enumerate()
            .map(move |(i, w)| (w.as_str(), i == last && self.prefix))
    }

    /// Whether one of the words could match a scope term of
    /// [`scope_words`] (a letter `a` or `d`, then `none`, or digits after
    /// an optional `m`), the last word as a prefix when it is one.
    fn may_meet_scope_term(&self) -> bool {
        self.each_word().any(|(w, prefix)| {
            let Some(rest) = w.strip_prefix(['a', 'd']) else {
                return false;
            };
            let digits = rest.strip_prefix('m').unwrap_or(rest);
            let all_digits = digits.bytes().all(|b| b.is_ascii_digit());
            if prefix {
                "none".starts_with(rest) || all_digits
            } else {
                rest == "none" || (!digits.is_empty() && all_digits)
            }
        })
    }
}

/// A parsed `q`: every `include` phrase and none of `exclude`; a ticket
/// whose number is one of `numbers` matches whatever the words say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Phrases a ticket must contain.
    pub include: Vec<Phrase>,
    /// Phrases it must not contain.
    pub exclude: Vec<Phrase>,
    /// Terms that are ticket numbers: those tickets match exactly.
    pub numbers: Vec<TicketNumber>,
}

/// A scope term: a letter and an id (`d3`, `a17`; `m` marks a negative
/// id, `dnone`/`anone` no value). Letters and digits only, so the index's
/// tokenizer keeps each whole.
fn scope_term(kind: char, id: Option<i64>) -> String {
    match id {
        None => format!("{kind}none"),
        Some(id) if id < 0 => format!("{kind}m{}", id.unsigned_abs()),
        Some(id) => format!("{kind}{id}"),
    }
}

/// The words of a ticket's scope column in an index that can tell who
/// may see a ticket (SQLite's FTS5 `scope`): its department and its
/// assignee, the two things [`Agent::may_see`] looks at. [`fts5_scope`]
/// is the matching condition; they are written here, together, so that
/// they agree.
pub fn scope_words(department: Option<i64>, assignee: Option<AgentId>) -> String {
    format!(
        "{} {}",
        scope_term('d', department),
        scope_term('a', assignee.map(|a| a.0))
    )
}

/// Who may see a ticket and the queue's `department` and `assignee`
/// filters, as scope terms ([`scope_words`]): every clause must hold,
/// and a clause holds when the ticket has any of its terms. Empty when
/// nothing is filtered (an admin's unfiltered search).
fn scope_clauses(
    viewer: &Agent,
    department: Option<i64>,
    assignee: Option<AssigneeFilter>,
) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    if !viewer.admin {
        let mut any: Vec<String> = viewer
            .departments
            .iter()
            .map(|d| scope_term('d', Some(*d)))
            .collect();
        any.push(scope_term('a', Some(viewer.id.0)));
        all.push(any);
    }
    if let Some(d) = department {
        all.push(vec![scope_term('d', Some(d))]);
    }
    match assignee {
        None => {}
        Some(AssigneeFilter::Me) => all.push(vec![scope_term('a', Some(viewer.id.0))]),
        Some(AssigneeFilter::Nobody) => all.push(vec![scope_term('a', None)]),
        Some(AssigneeFilter::Agent(a)) => all.push(vec![scope_term('a', Some(a.0))]),
    }
    all
}

/// The FTS5 condition on the `scope` column (of [`scope_words`]) that
/// holds for the tickets `viewer` may see ([`Agent::may_see`]: one of
/// their departments, or assigned to them) and that the queue's
/// `department` and `assignee` filters keep. `None` when nothing is
/// filtered (an admin's unfiltered search).
pub fn fts5_scope(
    viewer: &Agent,
    department: Option<i64>,
    assignee: Option<AssigneeFilter>,
) -> Option<String> {
    let clauses = scope_clauses(viewer, department, assignee);
    let all = render_scope(&clauses, |t| t.to_string(), " OR ", " AND ")?;
    Some(format!("scope : ({all})"))
}

/// Scope clauses ([`scope_clauses`]) in a query language: each term as
/// `term` writes it, a clause's terms joined by `or` in parentheses, the
/// clauses by `and`. `None` for no clause.
fn render_scope(
    clauses: &[Vec<String>],
    term: impl Fn(&str) -> String,
    or: &str,
    and: &str,
) -> Option<String> {
    if clauses.is_empty() {
        return None;
    }
    let all: Vec<String> = clauses
        .iter()
        .map(|any| {
            let any: Vec<String> = any.iter().map(|t| term(t)).collect();
            format!("({})", any.join(or))
        })
        .collect();
    Some(all.join(and))
}

/// What starts a lexeme of the index's own in a PostgreSQL `tsvector`
/// (a scope term, a marked copy, an id range): its parser never yields
/// it, so no typed word can match one, nor one a typed word. Such
/// lexemes are written and queried as literals (`CAST(… AS tsvector)`),
/// not through the parser.
pub const PG_OWN: char = '~';

/// Words (space-joined) as a PostgreSQL `tsvector` literal of the
/// index's own lexemes, each `PG_OWN` + `prefix` + the word, without
/// positions. Words are letters and digits only ([`words`], scope
/// terms), so quoting cannot be escaped.
pub fn pg_own_lexemes(words: &str, prefix: &str) -> String {
    let mut out = String::new();
    for w in words.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push('\'');
        out.push(PG_OWN);
        out.push_str(prefix);
        out.push_str(w);
        out.push('\'');
    }
    out
}

/// [`fts5_scope`] as a PostgreSQL `tsquery` literal over the scope
/// lexemes ([`pg_own_lexemes`] of [`scope_words`] with no prefix).
pub fn tsquery_scope(
    viewer: &Agent,
    department: Option<i64>,
    assignee: Option<AssigneeFilter>,
) -> Option<String> {
    let clauses = scope_clauses(viewer, department, assignee);
    render_scope(&clauses, |t| format!("'{PG_OWN}{t}'"), " | ", " & ")
}

/// A phrase in FTS5's query language.
fn fts5_phrase(p: &Phrase) -> String {
    let mut out = String::from("\"");
    for (i, w) in p.words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    out.push('"');
    if p.prefix {
        out.push('*');
    }
    out
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field: "q".into(),
        message: message.into(),
    }
}

impl SearchQuery {
    /// Parses `q`: words, `"phrases"`, `word*` prefixes, `-term`
    /// exclusions; a word that could be a ticket number (letters, digits
    /// and `-` with a digit, optionally after `#`) also names that ticket.
    /// `None` for a `q` with no words at all (the queue unfiltered).
    pub fn parse(q: &str) -> Result<Option<Self>, DomainError> {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid(format!("at most {MAX_QUERY_CHARS} characters")));
        }
        let mut query = SearchQuery {
            include: Vec::new(),
            exclude: Vec::new(),
            numbers: Vec::new(),
        };
        let mut terms = 0usize;
        let mut rest = q.trim_start();
        while !rest.is_empty() {
            let mut negated = false;
            if let Some(r) = rest.strip_prefix('-')
                && r.starts_with(|c: char| !c.is_whitespace())
            {
                negated = true;
                rest = r;
            }
            let (raw, quoted, after) = if let Some(r) = rest.strip_prefix('"') {
                let end = r.find('"').unwrap_or(r.len());
                (&r[..end], true, r.get(end + 1..).unwrap_or(""))
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                (&rest[..end], false, &rest[end..])
            };
            rest = after.trim_start();
            let (text, prefix) = if quoted {
                let trimmed = raw.trim_end();
                match trimmed.strip_suffix('*') {
                    Some(t) => (t, true),
                    None => (trimmed, false),
                }
            } else {
                let t = raw.trim_end_matches('*');
                (t, t.len() != raw.len())
            };
            if !negated && !quoted {
                let bare = text.strip_prefix('#').unwrap_or(text);
                if bare.chars().any(|c| c.is_ascii_digit())
                    && let Some(n) = TicketNumber::parse(bare)
                {
                    query.numbers.push(n);
                }
            }
            let words = words(text);
            if words.is_empty() {
                continue;
            }
            terms += 1;
            if terms > MAX_TERMS {
                return Err(invalid(format!("at most {MAX_TERMS} terms")));
            }
            if words.len() > MAX_PHRASE_WORDS {
                return Err(invalid(format!(
                    "a phrase has at most {MAX_PHRASE_WORDS} words"
                )));
            }
            // A one-letter prefix would match a large part of the index:
            // it is taken as the word itself (a CJK word is one letter).
            let prefix = prefix && words.last().is_some_and(|w| w.chars().count() >= 2);
            let phrase = Phrase { words, prefix };
            if negated {
                query.exclude.push(phrase);
            } else {
                query.include.push(phrase);
            }
        }
        if query.include.is_empty() && query.numbers.is_empty() {
            if query.exclude.is_empty() {
                return Ok(None);
            }
            return Err(invalid("needs a word to look for, not only exclusions"));
        }
        Ok(Some(query))
    }

    /// The words part as an FTS5 query (`None`: only numbers were given).
    /// Words are letters and digits only, so quoting cannot be escaped.
    pub fn to_fts5(&self) -> Option<String> {
        if self.include.is_empty() {
            return None;
        }
        let include: Vec<String> = self.include.iter().map(fts5_phrase).collect();
        let mut out = format!("({})", include.join(" AND "));
        for p in &self.exclude {
            out.push_str(" NOT ");
            out.push_str(&fts5_phrase(p));
        }
        Some(out)
    }

    /// [`SearchQuery::to_fts5`] over the text columns of an index with a
    /// scope column, and `scope` (of [`fts5_scope`]) with it, so FTS5
    /// intersects the words with who may see the ticket. `None`: only
    /// numbers were given.
    ///
    /// The words are held to `text_columns` only when one of them could
    /// be a scope term (`d3`, `anone`, a prefix of one): other words never
    /// occur in the scope column, and a column filter makes FTS5 copy
    /// every visited match's positions to drop the other columns' (about
    /// a tenth of a phrase's search, `"ne fonctionne pas"` at 1,000,000
    /// tickets).
    pub fn to_fts5_scoped(&self, text_columns: &str, scope: Option<&str>) -> Option<String> {
        let words = self.to_fts5()?;
        let held = self
            .include
            .iter()
            .chain(&self.exclude)
            .any(Phrase::may_meet_scope_term);
        let mut out = if held {
            format!("{{{text_columns}}} : ({words})")
        } else {
            format!("({words})")
        };
        if let Some(scope) = scope {
            out.push_str(" AND ");
            out.push_str(scope);
        }
        Some(out)
    }

    /// Every word of the phrases to find, all in the marked copy of one
    /// column ([`marked_copy`]; exclusions left out: a match already has
    /// none of them anywhere), the last word of a prefix phrase as a
    /// prefix. A phrase ranks as its words all in that column, not
    /// necessarily side by side: as PostgreSQL ranks it
    /// ([`SearchQuery::to_tsquery_marked`], whose marked copies carry no
    /// positions), so that both backends order a page alike. `None`: only
    /// numbers were given.
    pub fn to_fts5_marked(&self, mark: Mark) -> Option<String> {
        if self.include.is_empty() {
            return None;
        }
        let words: Vec<String> = self
            .included_words()
            .map(|(w, prefix)| {
                let star = if prefix { "*" } else { "" };
                format!("\"{}{w}\"{star}", mark.prefix())
            })
            .collect();
        Some(format!("({})", words.join(" AND ")))
    }

    /// [`SearchQuery::to_fts5_marked`] for PostgreSQL: every word of
    /// the phrases to find, as a lexeme of the marked copy of one column
    /// ([`pg_own_lexemes`] with the mark's prefix), a `tsquery` literal.
    /// The marked copies carry no positions: a phrase ranks as its
    /// words all in that column. `None`: only numbers were given.
    pub fn to_tsquery_marked(&self, mark: Mark) -> Option<String> {
        if self.include.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .included_words()
            .map(|(w, prefix)| {
                let star = if prefix { ":*" } else { "" };
                format!("'{PG_OWN}{}{w}'{star}", mark.prefix())
            })
            .collect();
        Some(parts.join(" & "))
    }

    /// Every word of the phrases to find, with whether it is a prefix.
    fn included_words(&self) -> impl Iterator<Item = (&str, bool)> {
        self.include.iter().flat_map(Phrase::each_word)
    }

    /// Whether a phrase of several words is to be found (its words'
    /// positions must be tested).
    pub fn has_phrases(&self) -> bool {
        self.include.iter().any(|p| p.words.len() > 1)
    }

    /// [`SearchQuery::to_tsquery`] with every phrase to find loosened to
    /// its words, anywhere (the exclusions stay as they are): what a
    /// PostgreSQL index answers without reading a `tsvector`, a superset
    /// of the matches that [`SearchQuery::to_tsquery`] then narrows.
    pub fn to_tsquery_words(&self) -> Option<String> {
        let loose = SearchQuery {
            include: self
                .included_words()
                .map(|(w, prefix)| Phrase {
                    words: vec![w.to_string()],
                    prefix,
                })
                .collect(),
            exclude: self.exclude.clone(),
            numbers: Vec::new(),
        };
        loose.to_tsquery()
    }

    /// The words part as a PostgreSQL `to_tsquery('simple', …)` text
    /// (`None`: only numbers were given).
    pub fn to_tsquery(&self) -> Option<String> {
        if self.include.is_empty() {
            return None;
        }
        let phrase = |p: &Phrase| {
            let last = p.words.len() - 1;
            let parts: Vec<String> = p
                .words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let w = w.replace('\'', "''").replace('\\', "\\\\");
                    if i == last && p.prefix {
                        format!("'{w}':*")
                    } else {
                        format!("'{w}'")
                    }
                })
                .collect();
            format!("({})", parts.join(" <-> "))
        };
        let mut parts: Vec<String> = self.include.iter().map(phrase).collect();
        parts.extend(self.exclude.iter().map(|p| format!("!{}", phrase(p))));
        Some(parts.join(" & "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_and_cjk_is_one_word_per_character() {
        let cases: &[(&str, &[&str])] = &[
            ("Printer OUT of toner!", &["printer", "out", "of", "toner"]),
            (
                "Café crème, naïve Ångström",
                &["cafe", "creme", "naive", "angstrom"],
            ),
            ("Straße Łódź Øresund", &["strasse", "lodz", "oresund"]),
            ("Принтер не печатает", &["принтер", "не", "печатает"]),
            (
                "印刷できません",
                &["印", "刷", "で", "き", "ま", "せ", "ん"],
            ),
            ("打印机坏了abc", &["打", "印", "机", "坏", "了", "abc"]),
            ("bob@example.com", &["bob", "example", "com"]),
            ("HD-001 #123456", &["hd", "001", "123456"]),
            ("한국어", &["한", "국", "어"]),
            ("ﬁle ①", &["file", "1"]),
        ];
        for (text, want) in cases {
            assert_eq!(words(text), *want, "{text}");
        }
        let long = "x".repeat(200);
        assert_eq!(words(&long), vec!["x".repeat(MAX_WORD_CHARS)]);
    }

    #[test]
    fn unclosed_tags_and_control_references_are_handled() {
        // An unclosed tag at the end, before a multibyte character.
        assert_eq!(words(&html_to_text("abc <é")), vec!["abc"]);
        assert_eq!(html_to_text("x<b"), "x ");
        assert_eq!(html_to_text("a&#0;b&#1;c&#10;d"), "a b c\nd");
    }

    #[test]
    fn style_and_script_are_skipped_to_their_close_in_any_case() {
        assert_eq!(
            words(&html_to_text(
                "a<STYLE>b{c:d}</Style>e<script>f()</SCRIPT>g<style>h</styl"
            )),
            vec!["a", "e", "g"]
        );
        // Many of them: each is skipped once, whatever follows.
        let many = "<style>x</style>w ".repeat(2_000);
        assert_eq!(words(&html_to_text(&many)).len(), 2_000);
    }

    #[test]
    fn html_loses_its_tags_and_keeps_its_text() {
        assert_eq!(
            words(&html_to_text(
                "<p>Out&nbsp;of <b>toner</b> &amp; paper &#233;t&eacute;<style>p{x:y}</style>ok</p>"
            )),
            vec!["out", "of", "toner", "paper", "et", "eacute", "ok"]
        );
    }

    #[test]
    fn index_text_is_space_joined_words_and_bounded() {
        assert_eq!(index_text(["Hello, World", "Café"]), "hello world cafe");
        let big = "word ".repeat(20_000);
        assert!(index_text([big.as_str()]).len() <= MAX_INDEX_BYTES_PER_PART);
    }

    fn phrase(words: &[&str], prefix: bool) -> Phrase {
        Phrase {
            words: words.iter().map(|w| w.to_string()).collect(),
            prefix,
        }
    }

    #[test]
    fn queries_parse_into_words_phrases_prefixes_exclusions_and_numbers() {
        let q = SearchQuery::parse(r#" print* "Out of  toner" -Café 123456 印刷 -"paper jam""#)
            .unwrap()
            .unwrap();
        assert_eq!(
            q.include,
            vec![
                phrase(&["print"], true),
                phrase(&["out", "of", "toner"], false),
                phrase(&["123456"], false),
                phrase(&["印", "刷"], false),
            ]
        );
        assert_eq!(
            q.exclude,
            vec![phrase(&["cafe"], false), phrase(&["paper", "jam"], false)]
        );
        assert_eq!(q.numbers, vec![TicketNumber::parse("123456").unwrap()]);
        assert_eq!(
            q.to_fts5().unwrap(),
            r#"("print"* AND "out of toner" AND "123456" AND "印 刷") NOT "cafe" NOT "paper jam""#
        );
        assert_eq!(
            q.to_fts5_marked(Mark::Subject).unwrap(),
            r#"("s_print"* AND "s_out" AND "s_of" AND "s_toner" AND "s_123456" AND "s_印" AND "s_刷")"#
        );
        assert_eq!(
            q.to_fts5_marked(Mark::Meta).unwrap(),
            r#"("m_print"* AND "m_out" AND "m_of" AND "m_toner" AND "m_123456" AND "m_印" AND "m_刷")"#
        );
        assert_eq!(
            q.to_tsquery().unwrap(),
            "('print':*) & ('out' <-> 'of' <-> 'toner') & ('123456') & ('印' <-> '刷') & !('cafe') & !('paper' <-> 'jam')"
        );
    }

    #[test]
    fn a_marked_copy_follows_the_words_and_no_typed_word_carries_a_mark() {
        assert_eq!(
            marked_copy("printer on floor 3", Mark::Subject),
            "printer on floor 3 s_printer s_on s_floor s_3"
        );
        assert_eq!(marked_copy("", Mark::Meta), "");
        assert_eq!(marked_copy("smith", Mark::Meta), "smith m_smith");
        // What a user types, marks included, becomes plain words.
        let q = SearchQuery::parse("s_printer \"m_smith jones\"")
            .unwrap()
            .unwrap();
        assert_eq!(
            q.include,
            vec![
                phrase(&["s", "printer"], false),
                phrase(&["m", "smith", "jones"], false)
            ]
        );
        assert!(words("s_printer m_x_y").iter().all(|w| !w.contains('_')));
    }

    #[test]
    fn a_number_alone_or_with_a_hash_names_a_ticket() {
        let q = SearchQuery::parse("#HD-001").unwrap().unwrap();
        assert_eq!(q.numbers, vec![TicketNumber::parse("HD-001").unwrap()]);
        assert_eq!(q.include, vec![phrase(&["hd", "001"], false)]);
        // A word without digits is no number.
        assert!(
            SearchQuery::parse("printer")
                .unwrap()
                .unwrap()
                .numbers
                .is_empty()
        );
    }

    #[test]
    fn bad_or_empty_queries() {
        assert_eq!(SearchQuery::parse("  ").unwrap(), None);
        assert_eq!(SearchQuery::parse("*** -").unwrap(), None);
        for bad in [
            "-printer".to_string(),
            "x".repeat(MAX_QUERY_CHARS + 1),
            "a ".repeat(MAX_TERMS + 1),
            "字".repeat(MAX_PHRASE_WORDS + 1),
        ] {
            let e = SearchQuery::parse(&bad).unwrap_err();
            assert_eq!(e.field(), "q", "{bad}");
        }
        // A one-letter prefix is the word itself.
        let q = SearchQuery::parse("a*").unwrap().unwrap();
        assert_eq!(q.include, vec![phrase(&["a"], false)]);
    }

    #[test]
    fn scope_terms_are_whole_words_and_a_scope_is_what_may_see_looks_at() {
        let agent = |admin, departments: Vec<i64>| Agent {
            id: AgentId(7),
            email: "a@x.org".into(),
            name: "A".into(),
            admin,
            active: true,
            departments,
        };
        assert_eq!(scope_words(Some(3), Some(AgentId(17))), "d3 a17");
        assert_eq!(scope_words(None, None), "dnone anone");
        // A negative id stays one word (the tokenizer splits at `-`).
        assert_eq!(words(&scope_words(Some(-4), None)), ["dm4", "anone"]);
        assert_eq!(fts5_scope(&agent(true, vec![1]), None, None), None);
        assert_eq!(
            fts5_scope(&agent(false, vec![1, 3]), None, None).as_deref(),
            Some("scope : ((d1 OR d3 OR a7))")
        );
        assert_eq!(
            fts5_scope(&agent(false, vec![]), None, None).as_deref(),
            Some("scope : ((a7))")
        );
        assert_eq!(
            fts5_scope(&agent(true, vec![]), Some(2), Some(AssigneeFilter::Nobody)).as_deref(),
            Some("scope : ((d2) AND (anone))")
        );
        assert_eq!(
            fts5_scope(&agent(false, vec![2]), None, Some(AssigneeFilter::Me)).as_deref(),
            Some("scope : ((d2 OR a7) AND (a7))")
        );
        // PostgreSQL: the same clauses over lexemes of the index's own.
        assert_eq!(tsquery_scope(&agent(true, vec![1]), None, None), None);
        assert_eq!(
            tsquery_scope(&agent(false, vec![2]), Some(2), Some(AssigneeFilter::Me)).as_deref(),
            Some("('~d2' | '~a7') & ('~d2') & ('~a7')")
        );
        assert_eq!(
            pg_own_lexemes(&scope_words(Some(3), None), ""),
            "'~d3' '~anone'"
        );
        assert_eq!(pg_own_lexemes("printer jam", "s_"), "'~s_printer' '~s_jam'");
        let q = SearchQuery::parse("\"out of\" print* -\"no toner\"")
            .unwrap()
            .unwrap();
        assert!(q.has_phrases());
        assert_eq!(
            q.to_tsquery_words().as_deref(),
            Some("('out') & ('of') & ('print':*) & !('no' <-> 'toner')")
        );
        let q = SearchQuery::parse("print* -\"no toner\"").unwrap().unwrap();
        assert!(!q.has_phrases());
        assert_eq!(q.to_tsquery_words(), q.to_tsquery());
        let q = SearchQuery::parse("\"out of\" print* -toner")
            .unwrap()
            .unwrap();
        assert_eq!(
            q.to_tsquery_marked(Mark::Meta).as_deref(),
            Some("'~m_out' & '~m_of' & '~m_print':*")
        );
        let q = SearchQuery::parse("printer -toner").unwrap().unwrap();
        assert_eq!(
            q.to_fts5_scoped("subject body meta", Some("scope : (d2)"))
                .as_deref(),
            Some("((\"printer\") NOT \"toner\") AND scope : (d2)")
        );
    }

    #[test]
    fn words_are_held_to_the_text_columns_only_when_they_could_be_scope_terms() {
        let scoped = |q: &str| {
            SearchQuery::parse(q)
                .unwrap()
                .unwrap()
                .to_fts5_scoped("subject body meta", Some("scope : (d2)"))
                .unwrap()
        };
        let held = |q: &str| scoped(q).starts_with("{subject body meta} : ");
        // Scope terms, typed: as words, in phrases, excluded, as prefixes.
        for q in [
            "d3",
            "a17",
            "dnone",
            "anone",
            "dm4",
            "am12",
            "printer d3",
            "\"d3 a17\"",
            "printer -a5",
            "dn*",
            "an*",
            "dm*",
            "d3*",
            "\"out of dn*\"",
            "D3",
        ] {
            assert!(held(q), "{q}: {}", scoped(q));
        }
        // Words no scope term can be: no column filter.
        for q in [
            "printer",
            "\"out of toner\"",
            "d3x",
            "admin",
            "done",
            "a1b",
            "dmx",
            "ad3",
            "print* -toner",
            "dx*",
            "am",
            "d",
        ] {
            assert!(!held(q), "{q}: {}", scoped(q));
        }
        assert_eq!(scoped("am"), "((\"am\")) AND scope : (d2)");
        assert!(held("\"a3 paper\" jam"));
        assert_eq!(
            scoped("\"out of toner\""),
            "((\"out of toner\")) AND scope : (d2)"
        );
    }
}
