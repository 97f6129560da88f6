//! Parsing of the sizes and durations that limits are written in.
//!
//! Sizes are parsed by [`bytesize`] and durations by [`humantime`]; this module only
//! adds the checks those crates leave to the caller (no sign, no `NaN`, a unit the
//! limits accept) and turns their errors into messages that say what is accepted.

use std::time::Duration;

/// Parses a memory size: a whole number of bytes (`65536`) or a number with a unit
/// (`64KiB`, `4 MiB`, `1.5GiB`, `4MB`).
///
/// `KiB`/`MiB`/`GiB` are binary (1024-based); `KB`/`MB`/`GB` are decimal
/// (1000-based), as in the SI. Units are case-insensitive.
///
/// ```
/// use airssys_wasm_core::units::parse_memory_size;
/// assert_eq!(parse_memory_size("4MiB"), Ok(4 * 1024 * 1024));
/// assert_eq!(parse_memory_size("64 KiB"), Ok(65536));
/// assert_eq!(parse_memory_size("1MB"), Ok(1_000_000));
/// assert!(parse_memory_size("-1MiB").is_err());
/// ```
///
/// # Errors
///
/// A message saying what was wrong and what is accepted.
pub fn parse_memory_size(text: &str) -> Result<u64, String> {
    const ACCEPTED: &str = "write bytes as a whole number, or a number with a unit: \
                            KiB, MiB, GiB (1024-based) or KB, MB, GB (1000-based), e.g. \"4MiB\"";
    let trimmed = text.trim();
    if !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("`{text}` is not a size; {ACCEPTED}"));
    }
    let unit: String = trimmed
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '_')
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        unit.as_str(),
        "" | "b" | "kib" | "mib" | "gib" | "kb" | "mb" | "gb" | "k" | "m" | "g"
    ) {
        return Err(format!("`{text}` has an unknown unit `{unit}`; {ACCEPTED}"));
    }
    let cleaned = trimmed.replace('_', "");
    cleaned
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("`{text}` is not a size; {ACCEPTED}"))
}

/// Parses a duration such as `500ms`, `2s`, `1m`, `1m 30s` (the [`humantime`] format).
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_core::units::parse_duration;
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
/// assert!(parse_duration("soon").is_err());
/// ```
///
/// # Errors
///
/// A message saying what was wrong and what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "`{text}` is not a duration ({e}); write a number with a unit: ms, s or m, e.g. \"500ms\""
        )
    })
}

/// Formats a size the way [`parse_memory_size`] reads it back, in the largest unit that
/// is exact (`4MiB`, `64KiB`, `1GiB`), or as bytes.
///
/// ```
/// use airssys_wasm_core::units::{format_memory_size, parse_memory_size};
/// assert_eq!(format_memory_size(4 << 20), "4MiB");
/// assert_eq!(format_memory_size(1000), "1000");
/// assert_eq!(parse_memory_size(&format_memory_size(3 << 19)), Ok(3 << 19));
/// ```
pub fn format_memory_size(bytes: u64) -> String {
    for (size, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if bytes.is_multiple_of(size) && bytes > 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Formats a duration the way [`parse_duration`] reads it back (`500ms`, `2s`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_sizes() {
        assert_eq!(format_memory_size(4 << 20), "4MiB");
        assert_eq!(format_memory_size(1 << 30), "1GiB");
        assert_eq!(format_memory_size(65536), "64KiB");
        assert_eq!(format_memory_size(1_000_001), "1000001");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_memory_size("65536"), Ok(65536));
        assert_eq!(parse_memory_size("1_048_576"), Ok(1 << 20));
        assert_eq!(parse_memory_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_memory_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_memory_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_memory_size("2KB"), Ok(2000));
        for bad in [
            "",
            "MiB",
            "-1",
            "-1MiB",
            "NaN",
            "inf",
            "4 parsecs",
            "4TiB",
            "1e9",
        ] {
            let err = parse_memory_size(bad).unwrap_err();
            assert!(err.contains("KiB, MiB, GiB"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("12").unwrap_err().contains("ms, s or m"));
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(
            parse_duration(&format_duration(Duration::from_millis(1500))),
            Ok(Duration::from_millis(1500))
        );
    }

    proptest! {
        #[test]
        fn size_parser_never_panics(s in "\\PC{0,24}") {
            let _ = parse_memory_size(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn whole_kib_round_trip(n in 0u64..(1 << 22)) {
            prop_assert_eq!(parse_memory_size(&format!("{n}KiB")), Ok(n * 1024));
        }
    }
}
