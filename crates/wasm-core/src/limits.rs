//! Resource limits of one component instance.
//!
//! Memory, fuel and timeout are **mandatory**: there is no `Default` for
//! [`ResourceLimits`], and [`PartialResourceLimits::resolve`] refuses to fill a missing
//! one with a made-up value. The structural bounds (tables, instances, memories) have
//! documented defaults because they guard Wasmtime's own bookkeeping, not the guest's
//! budget; they can be tightened.

use std::time::Duration;

use crate::error::{WasmError, WasmResult, fmt_bytes};
use crate::units::{format_duration, parse_duration, parse_memory_size};

/// The smallest memory limit accepted: one WebAssembly page.
pub const MIN_MEMORY_BYTES: u64 = 64 * 1024;
/// The largest memory limit accepted: the 32-bit address space.
pub const MAX_MEMORY_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// The longest timeout accepted for one call.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Default bound on the elements of any one table.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 100_000;
/// Default bound on the core instances one component instance may create.
pub const DEFAULT_MAX_INSTANCES: u64 = 1_000;
/// Default bound on the tables one component instance may create.
pub const DEFAULT_MAX_TABLES: u64 = 100;
/// Default bound on the linear memories one component instance may create.
pub const DEFAULT_MAX_MEMORIES: u64 = 100;

/// Default bound on the host resources one instance may hold at once: handles to
/// host-side objects in its resource table — the embedder's WIT `resource`s (a
/// counter, a connection) and WASI's streams, files and sockets alike. A guest
/// that creates handles without dropping them gets an error at this bound instead of
/// growing the host's memory.
pub const DEFAULT_MAX_HOST_RESOURCES: u64 = 10_000;

/// The smallest host-memory budget accepted (64 KiB): below it, a single log record or
/// key-value answer would not fit.
pub const MIN_HOST_MEMORY_BYTES: u64 = 64 * 1024;

/// The limits every instantiation and every call runs under.
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_core::ResourceLimits;
///
/// let limits = ResourceLimits::new(4 << 20, 10_000_000, Duration::from_millis(500))?;
/// assert_eq!(limits.memory_bytes(), 4 << 20);
/// assert!(ResourceLimits::new(1024, 1, Duration::from_secs(1)).is_err()); // < 64 KiB
/// # Ok::<(), airssys_wasm_core::WasmError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLimits {
    memory_bytes: u64,
    fuel: u64,
    timeout: Duration,
    max_table_elements: u64,
    max_instances: u64,
    max_tables: u64,
    max_memories: u64,
    max_host_resources: u64,
    host_memory_bytes: Option<u64>,
}

impl ResourceLimits {
    /// Limits with the three mandatory values: total linear memory of one instance in
    /// bytes, fuel for one call, and wall-clock time for one call.
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidLimits`] when memory is outside 64 KiB..=4 GiB, fuel is 0, or
    /// the timeout is 0 or over one hour.
    pub fn new(memory_bytes: u64, fuel: u64, timeout: Duration) -> WasmResult<Self> {
        check_memory(memory_bytes).map_err(invalid)?;
        check_fuel(fuel).map_err(invalid)?;
        check_timeout(timeout).map_err(invalid)?;
        Ok(Self {
            memory_bytes,
            fuel,
            timeout,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_tables: DEFAULT_MAX_TABLES,
            max_memories: DEFAULT_MAX_MEMORIES,
            max_host_resources: DEFAULT_MAX_HOST_RESOURCES,
            host_memory_bytes: None,
        })
    }

    /// Total bytes of all linear memories of one instance together.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Fuel for one call (each call gets it afresh).
    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    /// Wall-clock time for one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Bound on the elements of any one table.
    pub fn max_table_elements(&self) -> u64 {
        self.max_table_elements
    }

    /// Bound on the core instances one component instance may create.
    pub fn max_instances(&self) -> u64 {
        self.max_instances
    }

    /// Bound on the tables one component instance may create.
    pub fn max_tables(&self) -> u64 {
        self.max_tables
    }

    /// Bound on the linear memories one component instance may create.
    pub fn max_memories(&self) -> u64 {
        self.max_memories
    }

    /// Bound on the host resources the instance may hold at once (default
    /// [`DEFAULT_MAX_HOST_RESOURCES`]).
    pub fn max_host_resources(&self) -> u64 {
        self.max_host_resources
    }

    /// The host memory the host may keep on the instance's behalf at once, beyond its
    /// linear memory: what host code holds for it between its calls (compare-and-swap
    /// handles, key-value and HTTP state) and what one of its calls into the host may
    /// copy out of its memory. By default the memory limit itself: a guest can make the
    /// host hold at most about as much again as it may hold itself.
    pub fn host_memory_bytes(&self) -> u64 {
        self.host_memory_bytes.unwrap_or(self.memory_bytes)
    }

    /// Sets the host-memory budget ([`host_memory_bytes`](Self::host_memory_bytes)).
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidLimits`] below [`MIN_HOST_MEMORY_BYTES`] or above 4 GiB.
    pub fn with_host_memory_bytes(mut self, bytes: u64) -> WasmResult<Self> {
        check_host_memory(bytes).map_err(invalid)?;
        self.host_memory_bytes = Some(bytes);
        Ok(self)
    }

    /// Replaces the memory limit (checked like [`new`](Self::new)).
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidLimits`] when out of range.
    pub fn with_memory_bytes(mut self, bytes: u64) -> WasmResult<Self> {
        check_memory(bytes).map_err(invalid)?;
        self.memory_bytes = bytes;
        Ok(self)
    }

    /// Replaces the fuel budget (checked like [`new`](Self::new)).
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidLimits`] when 0.
    pub fn with_fuel(mut self, fuel: u64) -> WasmResult<Self> {
        check_fuel(fuel).map_err(invalid)?;
        self.fuel = fuel;
        Ok(self)
    }

    /// Replaces the timeout (checked like [`new`](Self::new)).
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidLimits`] when 0 or over one hour.
    pub fn with_timeout(mut self, timeout: Duration) -> WasmResult<Self> {
        check_timeout(timeout).map_err(invalid)?;
        self.timeout = timeout;
        Ok(self)
    }

    /// Sets the bound on the elements of any one table.
    pub fn with_max_table_elements(mut self, n: u64) -> Self {
        self.max_table_elements = n;
        self
    }

    /// Sets the bound on core instances per component instance.
    pub fn with_max_instances(mut self, n: u64) -> Self {
        self.max_instances = n;
        self
    }

    /// Sets the bound on tables per component instance.
    pub fn with_max_tables(mut self, n: u64) -> Self {
        self.max_tables = n;
        self
    }

    /// Sets the bound on linear memories per component instance.
    pub fn with_max_memories(mut self, n: u64) -> Self {
        self.max_memories = n;
        self
    }

    /// Sets the bound on live host resources per instance.
    pub fn with_max_host_resources(mut self, n: u64) -> Self {
        self.max_host_resources = n;
        self
    }
}

impl std::fmt::Display for ResourceLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory {}, fuel {}, timeout {}",
            fmt_bytes(self.memory_bytes),
            self.fuel,
            format_duration(self.timeout)
        )
    }
}

/// Limits being assembled from several sources (a manifest, then command-line flags).
///
/// Nothing is defaulted: [`resolve`](Self::resolve) fails unless all three mandatory
/// values were given by some source.
///
/// ```
/// use std::time::Duration;
/// use airssys_wasm_core::PartialResourceLimits;
///
/// let from_manifest = PartialResourceLimits {
///     memory_bytes: Some(4 << 20),
///     fuel: Some(1_000),
///     timeout: Some(Duration::from_secs(1)),
///     max_host_resources: None,
///     host_memory_bytes: None,
/// };
/// let from_flags = PartialResourceLimits { fuel: Some(5_000), ..Default::default() };
/// let limits = from_manifest.overridden_by(from_flags).resolve()?;
/// assert_eq!(limits.fuel(), 5_000);
///
/// let err = PartialResourceLimits::default().resolve().unwrap_err();
/// assert!(err.to_string().contains("memory"));
/// # Ok::<(), airssys_wasm_core::WasmError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartialResourceLimits {
    /// Total linear memory of one instance, in bytes.
    pub memory_bytes: Option<u64>,
    /// Fuel for one call.
    pub fuel: Option<u64>,
    /// Wall-clock time for one call.
    pub timeout: Option<Duration>,
    /// The bound on live host resources, when not the default
    /// ([`DEFAULT_MAX_HOST_RESOURCES`]).
    pub max_host_resources: Option<u64>,
    /// The host-memory budget, when not the default (the memory limit; see
    /// [`ResourceLimits::host_memory_bytes`]).
    pub host_memory_bytes: Option<u64>,
}

impl PartialResourceLimits {
    /// Parses the textual forms used on the command line (`"4MiB"`, `"10000"`, `"500ms"`).
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidLimits`] naming the value that does not parse.
    pub fn parse(
        memory: Option<&str>,
        fuel: Option<&str>,
        timeout: Option<&str>,
    ) -> WasmResult<Self> {
        let memory_bytes = memory
            .map(|m| parse_memory_size(m).map_err(|e| invalid(format!("memory: {e}"))))
            .transpose()?;
        let fuel = fuel
            .map(|f| {
                f.trim().replace('_', "").parse::<u64>().map_err(|_| {
                    invalid(format!(
                        "fuel: `{f}` is not a whole number of fuel units (e.g. 10000000)"
                    ))
                })
            })
            .transpose()?;
        let timeout = timeout
            .map(|t| parse_duration(t).map_err(|e| invalid(format!("timeout: {e}"))))
            .transpose()?;
        Ok(Self {
            memory_bytes,
            fuel,
            timeout,
            max_host_resources: None,
            host_memory_bytes: None,
        })
    }

    /// These limits with every value that `other` sets replaced by `other`'s.
    pub fn overridden_by(self, other: Self) -> Self {
        Self {
            memory_bytes: other.memory_bytes.or(self.memory_bytes),
            fuel: other.fuel.or(self.fuel),
            timeout: other.timeout.or(self.timeout),
            max_host_resources: other.max_host_resources.or(self.max_host_resources),
            host_memory_bytes: other.host_memory_bytes.or(self.host_memory_bytes),
        }
    }

    /// Checks that all three values are present and in range.
    ///
    /// # Errors
    ///
    /// [`WasmError::InvalidLimits`] naming every missing limit and how to give it.
    pub fn resolve(self) -> WasmResult<ResourceLimits> {
        let mut missing = Vec::new();
        if self.memory_bytes.is_none() {
            missing.push("memory (e.g. memory = \"4MiB\" or --memory 4MiB)");
        }
        if self.fuel.is_none() {
            missing.push("fuel (e.g. fuel = 10_000_000 or --fuel 10000000)");
        }
        if self.timeout.is_none() {
            missing.push("timeout (e.g. timeout = \"500ms\" or --timeout 500ms)");
        }
        match (self.memory_bytes, self.fuel, self.timeout) {
            (Some(m), Some(f), Some(t)) => {
                let l = ResourceLimits::new(m, f, t)?;
                let l = match self.max_host_resources {
                    Some(n) => l.with_max_host_resources(n),
                    None => l,
                };
                match self.host_memory_bytes {
                    Some(b) => l.with_host_memory_bytes(b),
                    None => Ok(l),
                }
            }
            _ => Err(invalid(format!(
                "no {} given; limits are mandatory and never defaulted — state {} in [limits] \
                 of Component.toml or on the command line",
                missing
                    .iter()
                    .map(|m| m.split(' ').next().unwrap_or(m))
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.join("; ")
            ))),
        }
    }
}

fn invalid(reason: String) -> WasmError {
    WasmError::InvalidLimits { reason }
}

/// Checks a host-memory budget's range; the message says the range.
pub fn check_host_memory(bytes: u64) -> Result<(), String> {
    if !(MIN_HOST_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&bytes) {
        return Err(format!(
            "host memory budget {} is out of range: it must be at least 64 KiB and at most \
             4 GiB",
            fmt_bytes(bytes)
        ));
    }
    Ok(())
}

/// Checks a memory limit's range; the message says the range.
pub fn check_memory(bytes: u64) -> Result<(), String> {
    if !(MIN_MEMORY_BYTES..=MAX_MEMORY_BYTES).contains(&bytes) {
        return Err(format!(
            "memory limit {} is out of range: it must be at least 64 KiB (one wasm page) \
             and at most 4 GiB",
            fmt_bytes(bytes)
        ));
    }
    Ok(())
}

/// Checks a fuel budget; the message says the range.
pub fn check_fuel(fuel: u64) -> Result<(), String> {
    if fuel == 0 {
        return Err("fuel must be at least 1 (a call with no fuel cannot run)".into());
    }
    Ok(())
}

/// Checks a timeout's range; the message says the range.
pub fn check_timeout(timeout: Duration) -> Result<(), String> {
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(format!(
            "timeout {} is out of range: it must be more than 0 and at most 1h",
            format_duration(timeout)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_enforced() {
        let ok = ResourceLimits::new(64 << 10, 1, Duration::from_millis(1));
        assert!(ok.is_ok());
        assert!(ResourceLimits::new(MAX_MEMORY_BYTES, 1, MAX_TIMEOUT).is_ok());
        let e = ResourceLimits::new((64 << 10) - 1, 1, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("at least 64 KiB"), "{e}");
        assert!(ResourceLimits::new(MAX_MEMORY_BYTES + 1, 1, MAX_TIMEOUT).is_err());
        let e = ResourceLimits::new(1 << 20, 0, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("fuel must be at least 1"), "{e}");
        assert!(ResourceLimits::new(1 << 20, 1, Duration::ZERO).is_err());
        assert!(ResourceLimits::new(1 << 20, 1, MAX_TIMEOUT + Duration::from_millis(1)).is_err());
    }

    #[test]
    fn missing_limits_are_named_and_never_defaulted() {
        let only_fuel = PartialResourceLimits {
            fuel: Some(10),
            ..Default::default()
        };
        let e = only_fuel.resolve().unwrap_err().to_string();
        assert!(e.contains("no memory, timeout given"), "{e}");
        assert!(e.contains("--memory 4MiB"), "{e}");
        assert!(!e.contains("--fuel"), "{e}");
        assert!(matches!(
            PartialResourceLimits::default().resolve(),
            Err(WasmError::InvalidLimits { .. })
        ));
    }

    #[test]
    fn parse_and_override() {
        let flags = PartialResourceLimits::parse(Some("1MiB"), Some("1_000"), Some("2s")).unwrap();
        assert_eq!(flags.memory_bytes, Some(1 << 20));
        assert_eq!(flags.fuel, Some(1000));
        assert_eq!(flags.timeout, Some(Duration::from_secs(2)));
        let base = PartialResourceLimits {
            memory_bytes: Some(2 << 20),
            fuel: Some(5),
            timeout: Some(Duration::from_secs(9)),
            max_host_resources: Some(64),
            host_memory_bytes: Some(1 << 20),
        };
        let merged = base.overridden_by(PartialResourceLimits {
            fuel: Some(7),
            ..Default::default()
        });
        assert_eq!(merged.memory_bytes, Some(2 << 20));
        assert_eq!(merged.resolve().unwrap().max_host_resources(), 64);
        assert_eq!(merged.resolve().unwrap().host_memory_bytes(), 1 << 20);
        // By default, the memory limit.
        let l = ResourceLimits::new(4 << 20, 1, Duration::from_secs(1)).unwrap();
        assert_eq!(l.host_memory_bytes(), 4 << 20);
        assert!(l.with_host_memory_bytes(1024).is_err());
        assert_eq!(merged.fuel, Some(7));
        let e = PartialResourceLimits::parse(None, Some("lots"), None).unwrap_err();
        assert!(e.to_string().contains("fuel: `lots`"), "{e}");
        let e = PartialResourceLimits::parse(Some("4 bananas"), None, None).unwrap_err();
        assert!(e.to_string().contains("memory:"), "{e}");
    }

    #[test]
    fn display_is_readable() {
        let l = ResourceLimits::new(4 << 20, 100, Duration::from_millis(500)).unwrap();
        assert_eq!(l.to_string(), "memory 4 MiB, fuel 100, timeout 500ms");
    }
}
