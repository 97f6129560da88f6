//! What [`ComponentLoader::load`](crate::ComponentLoader::load) takes: where from
//! ([`Source`]) and how ([`LoadOptions`]); and what it gives back ([`Loaded`]).

use std::path::Path;

use crate::{CacheOutcome, CompiledComponent};

/// Where [`ComponentLoader::load`] takes a component from.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Source<'a> {
    /// A file: a binary `.wasm`, or `.wat` text. Named after the file unless
    /// [`LoadOptions::name`] says otherwise.
    File(&'a Path),
    /// Bytes: binary, or WAT text. Named [`BYTES_NAME`] unless [`LoadOptions::name`]
    /// says otherwise.
    Bytes(&'a [u8]),
    /// A file [`ComponentLoader::precompile`] (or `airssys-wasm compile`) wrote: made
    /// only by the unsafe [`Source::precompiled_file`].
    Precompiled(Precompiled<'a>),
}

/// A precompiled file, vouched for by the caller of [`Source::precompiled_file`].
#[derive(Debug, Clone, Copy)]
pub struct Precompiled<'a>(pub(crate) &'a Path);

impl<'a> Source<'a> {
    /// A file written by [`ComponentLoader::precompile`] (or `airssys-wasm compile`),
    /// to be memory-mapped and run without compiling.
    ///
    /// # Safety
    ///
    /// The file is native code that is mapped and run **without validation**: it must
    /// come from a trusted source (precompiled by this engine configuration and not
    /// modified since). Wasmtime checks that it was made by a compatible engine, not
    /// that its code is what compiling a valid component would have produced.
    pub unsafe fn precompiled_file(path: &'a Path) -> Self {
        Self::Precompiled(Precompiled(path))
    }
}

/// How [`ComponentLoader::load`] loads: the name a component goes by in messages, and
/// the SHA-256 digest its bytes must have.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub(crate) name: Option<String>,
    pub(crate) sha256: Option<String>,
}

impl LoadOptions {
    /// The defaults: named after its file (or [`BYTES_NAME`]), nothing pinned.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options naming the component `name` (a manifest's component name, say).
    pub fn named(name: impl Into<String>) -> Self {
        Self::new().name(name)
    }

    /// The name used in every message about the component.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The SHA-256 digest (hex, either case) the bytes must have (a manifest's
    /// `sha256`): checked before anything is compiled or taken from the cache.
    #[must_use]
    pub fn sha256(mut self, digest: impl Into<String>) -> Self {
        self.sha256 = Some(digest.into());
        self
    }
}

/// What [`ComponentLoader::load`] loaded, and whether the artifact cache served it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Loaded {
    /// The component.
    pub component: CompiledComponent,
    /// Whether the cache served it, missed, replaced a corrupt entry, or is off.
    pub outcome: CacheOutcome,
}

impl Loaded {
    /// The component and the cache's outcome.
    pub fn into_parts(self) -> (CompiledComponent, CacheOutcome) {
        (self.component, self.outcome)
    }
}
