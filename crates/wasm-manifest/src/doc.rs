//! The walk over a spanned TOML document that reading `Component.toml` is made of: the
//! document and its file, and the steps every section takes — a table, an array, a
//! string, a size, a list of items each checked and not repeated — each failing with
//! an error at its line and column that names the key, says what is wrong and how to
//! fix it (with the nearest known key for a typo).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use airssys_wasm_core::units::{parse_duration, parse_memory_size};

use crate::error::{ManifestError, ManifestErrorKind, line_col};

/// A value with its span in the text.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// A step of the walk.
pub(crate) type PResult<T> = std::result::Result<T, ManifestError>;

/// What makes an item of a list invalid: the message, and how to fix it.
pub(crate) type Invalid = (String, Option<String>);

/// A manifest's text and the file it is read from (for messages, and relative paths).
pub(crate) struct Doc<'t> {
    pub(crate) text: &'t str,
    pub(crate) file: &'t Path,
}

impl Doc<'_> {
    pub(crate) fn error(
        &self,
        span: Range<usize>,
        kind: ManifestErrorKind,
        key: Option<&str>,
        message: String,
        help: Option<String>,
    ) -> ManifestError {
        let (line, column) = line_col(self.text, span.start);
        ManifestError {
            kind,
            file: self.file.to_owned(),
            line,
            column,
            key: key.map(str::to_owned),
            message,
            help,
        }
    }

    pub(crate) fn base_dir(&self) -> PathBuf {
        match self.file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    pub(crate) fn check_keys(
        &self,
        table: &DeTable<'_>,
        known: &[&str],
        table_name: Option<&str>,
    ) -> PResult<()> {
        for (key, _) in table.iter() {
            let k = key.get_ref().as_ref();
            if known.contains(&k) {
                continue;
            }
            let where_ =
                table_name.map_or_else(|| "at the top level".to_owned(), |t| format!("in [{t}]"));
            let help = match suggest(k, known) {
                Some(s) => format!(
                    "did you mean `{s}`? Known keys {where_}: {}",
                    known.join(", ")
                ),
                None => format!("known keys {where_}: {}", known.join(", ")),
            };
            return Err(self.error(
                key.span(),
                ManifestErrorKind::UnknownKey,
                Some(&dotted(table_name, k)),
                format!("unknown key `{k}` {where_}"),
                Some(help),
            ));
        }
        Ok(())
    }

    pub(crate) fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Value<'i>> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    pub(crate) fn table<'a, 'i>(
        &self,
        parent: &'a DeTable<'i>,
        key: &str,
        parent_name: Option<&str>,
    ) -> PResult<Option<(Range<usize>, &'a DeTable<'i>)>> {
        match Self::get(parent, key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Ok(Some((v.span(), t))),
                other => {
                    Err(self.wrong_type(v.span(), &dotted(parent_name, key), "a table", other))
                }
            },
        }
    }

    pub(crate) fn wrong_type(
        &self,
        span: Range<usize>,
        key: &str,
        expected: &str,
        found: &DeValue<'_>,
    ) -> ManifestError {
        self.error(
            span,
            ManifestErrorKind::WrongType,
            Some(key),
            format!("`{key}` must be {expected}, found {}", type_name(found)),
            None,
        )
    }

    pub(crate) fn missing(
        &self,
        table_span: Range<usize>,
        table: &str,
        key: &str,
        why: &str,
        example: &str,
    ) -> ManifestError {
        self.error(
            table_span,
            ManifestErrorKind::MissingKey,
            Some(&format!("{table}.{key}")),
            format!("[{table}] has no `{key}`{why}"),
            Some(format!("add e.g. {example}")),
        )
    }

    pub(crate) fn invalid(
        &self,
        span: Range<usize>,
        key: &str,
        message: String,
        help: Option<String>,
    ) -> ManifestError {
        self.error(
            span,
            ManifestErrorKind::InvalidValue,
            Some(key),
            message,
            help,
        )
    }

    /// The items of the optional array `key` of `t` (none when it is absent), or a
    /// type error naming `dotted` and what it must be.
    pub(crate) fn array<'a, 'i>(
        &self,
        t: &'a DeTable<'i>,
        key: &str,
        dotted: &str,
        expected: &str,
    ) -> PResult<&'a [Value<'i>]> {
        match Self::get(t, key) {
            None => Ok(&[]),
            Some(v) => match v.get_ref() {
                DeValue::Array(items) => Ok(items),
                other => Err(self.wrong_type(v.span(), dotted, expected, other)),
            },
        }
    }

    pub(crate) fn string<'a>(&self, v: &'a Value<'_>, key: &str) -> PResult<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            other => Err(self.wrong_type(v.span(), key, "a string", other)),
        }
    }

    /// A size: bytes as an integer, or a string with a unit (`example`).
    pub(crate) fn size(&self, v: &Value<'_>, key: &str, example: &str) -> PResult<u64> {
        match v.get_ref() {
            DeValue::Integer(i) => self.unsigned(v.span(), key, i.as_str(), i.radix()),
            DeValue::String(s) => {
                parse_memory_size(s).map_err(|e| self.invalid(v.span(), key, e, None))
            }
            other => Err(self.wrong_type(
                v.span(),
                key,
                &format!("a size (bytes as an integer, or a string like \"{example}\")"),
                other,
            )),
        }
    }

    pub(crate) fn unsigned(
        &self,
        span: Range<usize>,
        key: &str,
        digits: &str,
        radix: u32,
    ) -> PResult<u64> {
        u64::from_str_radix(digits, radix).map_err(|_| {
            self.invalid(
                span,
                key,
                if digits.starts_with('-') {
                    format!("`{key}` cannot be negative")
                } else {
                    format!("`{key}` is too large")
                },
                None,
            )
        })
    }

    /// The strings of the optional array `key` of `t` (dotted: `path`), each read by
    /// `read` (an error at the item), and refused when `twice` finds it among those
    /// before it (`twice` says what is wrong and how to fix it).
    pub(crate) fn strings<T>(
        &self,
        t: &DeTable<'_>,
        key: &str,
        path: &str,
        read: impl Fn(&str, Range<usize>) -> Result<T, Invalid>,
        twice: impl Fn(&[T], &T) -> Option<(String, String)>,
    ) -> PResult<Vec<T>> {
        self.list(t, key, path, "an array of strings", path, twice, |item| {
            let s = self.string(item, path)?;
            read(s, item.span())
                .map_err(|(message, help)| self.invalid(item.span(), path, message, help))
        })
    }

    /// The items of the optional array `key` of `t` (dotted: `path`; `expected` says
    /// what it must be), each read by `read`, and refused at the item, under
    /// `twice_key`, when `twice` finds it among those before it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn list<T>(
        &self,
        t: &DeTable<'_>,
        key: &str,
        path: &str,
        expected: &str,
        twice_key: &str,
        twice: impl Fn(&[T], &T) -> Option<(String, String)>,
        read: impl Fn(&Value<'_>) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        let mut out: Vec<T> = Vec::new();
        for item in self.array(t, key, path, expected)? {
            let value = read(item)?;
            if let Some((message, help)) = twice(&out, &value) {
                return Err(self.invalid(item.span(), twice_key, message, Some(help)));
            }
            out.push(value);
        }
        Ok(out)
    }

    /// Where `span` starts, as `file:line:column`: a grant's origin.
    pub(crate) fn origin(&self, span: &Range<usize>) -> String {
        let (line, column) = line_col(self.text, span.start);
        format!("{}:{line}:{column}", self.file.display())
    }
}

pub(crate) fn dotted(table: Option<&str>, key: &str) -> String {
    match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The known key closest to `unknown`, if one is close enough to be a typo.
pub(crate) fn suggest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The tables of the array of tables `key` (`[[key]]`), with their spans.
pub(crate) fn tables<'a, 'i>(
    doc: &Doc<'_>,
    root: &'a DeTable<'i>,
    key: &str,
) -> PResult<Vec<(Range<usize>, &'a DeTable<'i>)>> {
    let mut out = Vec::new();
    for item in doc.array(root, key, key, &format!("[[{key}]] tables"))? {
        match item.get_ref() {
            DeValue::Table(t) => out.push((item.span(), t)),
            other => {
                return Err(doc.wrong_type(item.span(), key, &format!("[[{key}]] tables"), other));
            }
        }
    }
    Ok(out)
}

/// The duration at `key` of `t` (dotted: `dotted`), if any.
pub(crate) fn duration(
    doc: &Doc<'_>,
    t: &DeTable<'_>,
    key: &str,
    dotted: &str,
) -> PResult<Option<Duration>> {
    match Doc::get(t, key) {
        None => Ok(None),
        Some(v) => {
            let s = doc.string(v, dotted)?;
            parse_duration(s).map(Some).map_err(|e| {
                doc.invalid(v.span(), dotted, e, Some("e.g. \"5s\" or \"250ms\"".into()))
            })
        }
    }
}
