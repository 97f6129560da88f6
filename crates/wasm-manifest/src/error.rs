//! [`ManifestError`]: what is wrong in a `Component.toml`, where, and how to fix it.

use std::path::PathBuf;

/// The kind of a [`ManifestError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestErrorKind {
    /// The file could not be read.
    Io,
    /// The text is not valid TOML (including duplicate keys).
    Syntax,
    /// A key this format does not have.
    UnknownKey,
    /// A required key or table is missing.
    MissingKey,
    /// A value of the wrong TOML type (a string where a number belongs, …).
    WrongType,
    /// A value of the right type that is not acceptable (bad unit, out of range,
    /// bad name, unknown `access`, …).
    InvalidValue,
    /// The component file that `path` names does not exist.
    MissingComponent,
    /// A preopened host directory does not exist or is not a directory.
    MissingDirectory,
    /// A `[config]` value read from the host's environment (`{ env = "VAR" }`) whose
    /// variable is not set (or not text).
    UnsetVariable,
}

/// An error in a `Component.toml`, pointing at the line and column.
///
/// Displayed as `FILE:LINE:COL: MESSAGE` followed by `— FIX` when there is one, e.g.
/// ``Component.toml:6:1: [limits] has no `memory`; memory limits are mandatory — add e.g. memory = "4MiB"``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}{}", file.display(), help.as_ref().map(|h| format!(" — {h}")).unwrap_or_default())]
#[non_exhaustive]
pub struct ManifestError {
    /// What kind of problem.
    pub kind: ManifestErrorKind,
    /// The manifest file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The key concerned, dotted (`limits.memory`), when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Line and column (1-based, column in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 9), (2, 3)); // after the two-byte 'é'
        assert_eq!(line_col(t, 999), (3, 1));
    }
}
