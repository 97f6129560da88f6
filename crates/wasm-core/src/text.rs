//! Text that crosses a trust boundary: strings a guest or a client chose, on their way
//! into the host's logs ([`escape`]), and URLs the operator wrote, on their way into
//! messages ([`redact_url`]).
//!
//! ```
//! use airssys_wasm_core::text::{escape, redact_url};
//!
//! // A guest-chosen name cannot start a forged log line or drive the terminal.
//! let forged = "x\n2026-12-07T00:00:00Z INFO airssys_wasm::access GET / 200\x1b]0;owned\x07";
//! let safe = escape(forged, 256);
//! assert!(!safe.contains('\n') && !safe.contains('\x1b') && !safe.contains('\x07'));
//! assert!(safe.starts_with("x\\n2026"));
//!
//! // The operator's password never leaves in a message.
//! assert_eq!(redact_url("redis://:s3cret@127.0.0.1:6379/0"), "redis://***@127.0.0.1:6379/0");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` made safe to write into a log line: every control character (C0, DEL, C1 —
/// newlines, carriage returns, ESC, BEL…), every Unicode line or paragraph separator
/// and every bidirectional override is written as an escape (`\n`, `\r`, `\t`,
/// `\u{1b}`), and a backslash as `\\`, so that what was escaped cannot be mistaken for
/// what was not; then cut to `max_chars` characters of output, marked with the
/// original length when cut. Text with nothing to escape and within the bound is
/// returned as it is, without copying.
pub fn escape(text: &str, max_chars: usize) -> Cow<'_, str> {
    let clean = text.chars().all(|c| !needs_escape(c));
    if clean && text.len() <= max_chars {
        // At most `max_chars` bytes, so at most that many characters.
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)) + 16);
    let mut written = 0usize;
    for c in text.chars() {
        let before = out.len();
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
        // Characters of output, counted as pushed (escapes are ASCII).
        written += out[before..].chars().count();
        if written > max_chars {
            out.truncate(before);
            let _ = write!(out, "… ({} bytes)", text.len());
            break;
        }
    }
    Cow::Owned(out)
}

/// Whether `c` cannot be written into a log line as it is.
fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(
            c,
            // Line and paragraph separators, and the bidirectional controls that can
            // make a line read differently from what it holds.
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `url` with its user information (a user name, a password, a token) replaced by
/// `***`: `redis://user:pw@host:6379` → `redis://***@host:6379`. Text that is not a URL
/// with user information is returned as it is.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    // The authority ends at the first `/`, `?` or `#`; its user information at its last `@`.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end + 3], &rest[at..]),
        None => url.to_owned(),
    }
}

/// Every URL with user information inside `text` (a driver's error message may quote
/// the URL it was given) redacted as [`redact_url`] does.
pub fn redact_urls_in(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: the letters, digits, `+`, `-`, `.` before `://`.
        let scheme_start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |p| p + 1);
        out.push_str(&rest[..scheme_start]);
        // The URL runs to the next blank or quote.
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || "\"'<>`".contains(c))
            .unwrap_or(after.len());
        out.push_str(&redact_url(&rest[scheme_start..i + 3 + end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("bucket-1 é ✓", 64), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_are_escaped_and_cannot_be_confused_with_text() {
        assert_eq!(escape("a\nb\r\tc", 64), "a\\nb\\r\\tc");
        assert_eq!(escape("\x1b]0;t\x07", 64), "\\u{1b}]0;t\\u{7}");
        assert_eq!(
            escape("\u{85}\u{2028}\u{202e}", 64),
            "\\u{85}\\u{2028}\\u{202e}"
        );
        // A literal backslash-n stays distinguishable from an escaped newline.
        assert_eq!(escape("a\\nb", 64), "a\\\\nb");
    }

    #[test]
    fn output_is_cut_at_the_bound_counting_escapes() {
        let newlines = "\n".repeat(100);
        let cut = escape(&newlines, 10);
        assert!(cut.starts_with("\\n\\n\\n\\n\\n…"), "{cut}");
        assert!(cut.ends_with("(100 bytes)"), "{cut}");
        let accents = "é".repeat(300);
        let cut = escape(&accents, 256);
        assert_eq!(cut.chars().filter(|&c| c == 'é').count(), 256);
        assert!(cut.ends_with("… (600 bytes)"));
        assert_eq!(escape("abc", 3), "abc");
    }

    #[test]
    fn user_information_is_redacted() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://user:p@ss@host:1/0?x=@"),
            "redis://***@host:1/0?x=@"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_urls_in("store redis://:s3cret@h:1: OOM, was 'rediss://a:b@c/'"),
            "store redis://***@h:1: OOM, was 'rediss://***@c/'"
        );
        assert_eq!(redact_urls_in("no url"), "no url");
    }
}
