//! Pure decoding of request bodies into a format-neutral [`TicketDraft`].
//!
//! Each format (JSON now; XML and email later) turns bytes into the same
//! draft: a list of named raw values, the message and the attachments.
//! Intake never touches storage, configuration files or the clock; the
//! few limits it needs come in as [`IntakeLimits`]. Which fields are
//! allowed and how they are typed is decided by `domain`.

pub mod charset;
pub mod data_url;
pub mod email;
pub mod html;
pub mod json;
pub mod tnef;
pub mod xml;

/// A field value as the request carried it, before the forms type it.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// JSON `null`: treated as absent.
    Null,
    /// JSON `true`/`false`.
    Bool(bool),
    /// A JSON number, kept as its literal text (no float rounding).
    Number(String),
    /// A string (XML values are always strings).
    Str(String),
    /// A JSON array.
    List(Vec<RawValue>),
    /// A JSON object: valid for no field.
    Object,
}

impl RawValue {
    /// Name of the JSON type, for "expected X, got Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            RawValue::Null => "null",
            RawValue::Bool(_) => "boolean",
            RawValue::Number(_) => "number",
            RawValue::Str(_) => "string",
            RawValue::List(_) => "array",
            RawValue::Object => "object",
        }
    }

    /// Absent for our purposes: `null` or a string of white space only.
    pub fn is_empty(&self) -> bool {
        match self {
            RawValue::Null => true,
            RawValue::Str(s) => s.trim().is_empty(),
            RawValue::List(l) => l.is_empty(),
            _ => false,
        }
    }
}

/// How a message body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// text/plain: shown as is, never interpreted as markup.
    Text,
    /// text/html, already sanitised by [`html::sanitize`].
    Html,
}

impl BodyFormat {
    /// `text` or `html`, as the read API reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyFormat::Text => "text",
            BodyFormat::Html => "html",
        }
    }

    /// The format of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "text" => Some(BodyFormat::Text),
            "html" => Some(BodyFormat::Html),
            _ => None,
        }
    }
}

/// The decoded message body.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDraft {
    /// UTF-8 text (sanitised when html).
    pub body: String,
    /// Text or html.
    pub format: BodyFormat,
}

/// One decoded attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentDraft {
    /// File name as sent.
    pub name: String,
    /// Media type without parameters, lower case.
    pub content_type: String,
    /// The bytes (text/* with a declared charset: converted to UTF-8).
    pub data: Vec<u8>,
    /// Shown inline (email `Content-Disposition: inline` with a Content-ID).
    pub inline: bool,
    /// Content-ID without angle brackets.
    pub content_id: Option<String>,
}

/// A request, decoded but not yet checked against the forms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketDraft {
    /// Every simple field, in request order (message and attachments apart).
    pub fields: Vec<(String, RawValue)>,
    /// The message, when one was sent.
    pub message: Option<MessageDraft>,
    /// Attachments in request order.
    pub attachments: Vec<AttachmentDraft>,
}

/// A part of an email left out of its ticket (API.md: a customer's mail
/// is never refused for one oversize file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPart {
    /// File name (invented when the part had none).
    pub name: String,
    /// Decoded size in bytes.
    pub size: u64,
    /// Why, for staff: `over max_attachment_bytes (…)`.
    pub reason: String,
}

/// The caps intake applies while decoding.
#[derive(Debug, Clone, Copy)]
pub struct IntakeLimits {
    /// Largest decoded attachment.
    pub max_attachment_bytes: u64,
    /// Most attachments.
    pub max_attachments: usize,
}

/// Caps on a request's fields (issue 16 point 5): how many, how long.
/// The count is applied by the JSON and XML readers while they parse;
/// the lengths by `domain::tickets` (one rule for every format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldLimits {
    /// Most field values in one request: simple fields, items of a list,
    /// XML attributes of one element.
    pub max_fields: usize,
    /// Longest user name, in characters.
    pub max_name_chars: usize,
    /// Longest subject, in characters.
    pub max_subject_chars: usize,
    /// Longest value of any other field, in characters.
    pub max_field_value_chars: usize,
    /// Longest attachment file name, in characters.
    pub max_file_name_chars: usize,
}

impl Default for FieldLimits {
    /// osTicket's column sizes: user name 128, subject 255, file name 255;
    /// form values are TEXT (64 KiB).
    fn default() -> Self {
        Self {
            max_fields: 256,
            max_name_chars: 128,
            max_subject_chars: 255,
            max_field_value_chars: 65_535,
            max_file_name_chars: 255,
        }
    }
}

/// Why a body could not be decoded. Every variant names what the caller
/// must fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntakeError {
    /// No body at all.
    #[error("request body is empty")]
    EmptyBody,
    /// Syntax error, with the parser's position.
    #[error("malformed {format} at line {line}, column {column}: {message}")]
    Malformed {
        /// `JSON`, `XML`, `MIME`.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's words.
        message: String,
    },
    /// The body parsed but is not a ticket (a JSON array, another XML root).
    #[error("{0}")]
    NotATicket(String),
    /// A field of the wrong type.
    #[error("{field}: expected {expected}, got {got}")]
    WrongType {
        /// The field.
        field: String,
        /// What it must be.
        expected: &'static str,
        /// What came.
        got: &'static str,
    },
    /// A data URL that is not one.
    #[error("{field}: invalid data URL: {reason}")]
    BadDataUrl {
        /// The field or file name.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Base64 that does not decode.
    #[error("{field}: badly encoded base64 data")]
    BadBase64 {
        /// The field or file name.
        field: String,
    },
    /// A charset no decoder knows.
    #[error("{field}: unknown charset \"{charset}\"")]
    UnknownCharset {
        /// The field or file name.
        field: String,
        /// The label sent.
        charset: String,
    },
    /// A file name that is empty.
    #[error("attachments: a file has an empty name")]
    EmptyFileName,
    /// One attachment over the cap (413).
    #[error("{name}: attachment of {size} bytes is over the limit of {limit} bytes")]
    AttachmentTooLarge {
        /// File name.
        name: String,
        /// Decoded size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// A message past a cap on its structure or on the work reading it
    /// takes: too many MIME parts, past its deadline (413; permanent).
    #[error("{0}")]
    TooComplex(String),
    /// More values than a cap allows (413), found while parsing.
    #[error("{field}: more than {limit} values")]
    TooManyValues {
        /// `fields`, or the element whose attributes are too many.
        field: String,
        /// The cap.
        limit: usize,
    },
    /// A field sent twice (its first value would be silently lost).
    #[error("{field}: given more than once")]
    Duplicate {
        /// The field.
        field: String,
    },
    /// More attachments than allowed (413).
    #[error("attachments: {count} files is more than the limit of {limit}")]
    TooManyAttachments {
        /// How many came.
        count: usize,
        /// The cap.
        limit: usize,
    },
}

impl IntakeError {
    /// The request field the error is about, for the JSON error envelope.
    pub fn field(&self) -> Option<&str> {
        match self {
            IntakeError::EmptyBody
            | IntakeError::Malformed { .. }
            | IntakeError::NotATicket(_)
            | IntakeError::TooComplex(_) => None,
            IntakeError::WrongType { field, .. }
            | IntakeError::BadDataUrl { field, .. }
            | IntakeError::BadBase64 { field }
            | IntakeError::UnknownCharset { field, .. }
            | IntakeError::TooManyValues { field, .. }
            | IntakeError::Duplicate { field } => Some(field),
            IntakeError::AttachmentTooLarge { name, .. } => Some(name),
            IntakeError::EmptyFileName | IntakeError::TooManyAttachments { .. } => {
                Some("attachments")
            }
        }
    }
}

/// Applies the attachment caps; shared by every format.
pub fn check_attachment(
    limits: &IntakeLimits,
    count_so_far: usize,
    att: &AttachmentDraft,
) -> Result<(), IntakeError> {
    if att.name.trim().is_empty() {
        return Err(IntakeError::EmptyFileName);
    }
    if count_so_far + 1 > limits.max_attachments {
        return Err(IntakeError::TooManyAttachments {
            count: count_so_far + 1,
            limit: limits.max_attachments,
        });
    }
    let size = att.data.len() as u64;
    if size > limits.max_attachment_bytes {
        return Err(IntakeError::AttachmentTooLarge {
            name: att.name.clone(),
            size,
            limit: limits.max_attachment_bytes,
        });
    }
    Ok(())
}
