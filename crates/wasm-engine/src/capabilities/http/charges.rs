//! What a guest's `wasi:http` resources make the host keep, charged to the instance's
//! host-memory budget ([`crate::runtime::host_memory`]): the fields (headers and trailers) it
//! builds, and the outgoing bodies it writes.
//!
//! `wasmtime-wasi-http` bounds each fields value (its field size limit, set in
//! [`super::context`]) and each outgoing body's buffer, but not how many a guest keeps:
//! 10,000 handles of 128 KiB fields each would be 1.28 GB of host memory under any
//! memory limit. So the functions that build or grow a mutable fields value — its
//! constructor, `from-list`, `set`, `append`, `delete`, `clone` — and those that open
//! an outgoing body are linked over `wasmtime-wasi-http`'s (linker shadowing): each
//! forwards to it, then charges against the budget the fields value's size (as
//! `wasmtime-wasi-http` counts it: names, values and their structures) or, for a body,
//! the most its buffer can hold ([`BODY_RESERVATION`]). The charge of headers follows
//! them into the `outgoing-request` or `outgoing-response` built from them; a body's
//! is added to its request's or response's. Both are given back once the guest has
//! dropped the handle, or the request was sent or the response set (looked up lazily:
//! when a charge would not fit, the handles no longer in the table are released first).
//! What is in flight after that is bounded apart: requests by the outgoing-request
//! bound, responses by the server's concurrency.
//!
//! Over the budget: `wasi:http` 0.2 has no error for it (`wasmtime-wasi-http` traps on
//! its own limit too), so the call traps with
//! [`BudgetExceeded`](crate::runtime::host_memory::BudgetExceeded), which the caller gets as
//! `ResourceLimitExceeded` naming the budget. The host may hold one operation's growth
//! (at most one field size limit) past the budget until then.

use std::collections::HashMap;

use http::{HeaderName, HeaderValue};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi_http::p2::bindings::http::types::{self, HeaderError, HostFields};
use wasmtime_wasi_http::p2::types::{HostOutgoingRequest, HostOutgoingResponse};
use wasmtime_wasi_http::{FieldMap, WasiHttpView};

use crate::runtime::host_memory::HostMemory;

/// The `wasi:http/types` that `wasmtime-wasi-http` links (older 0.2 imports resolve to
/// it).
const TYPES: &str = "wasi:http/types@0.2.12";

/// What the budget calls these charges.
const WHAT: &str = "wasi:http fields";

/// What the budget calls a body's.
const WHAT_BODY: &str = "wasi:http outgoing bodies";

/// What an outgoing body may hold in the host: the write being handed over and the one
/// buffered beside it (see [`super::OUTGOING_BODY_CHUNK`]).
pub(crate) const BODY_RESERVATION: u64 = 2 * super::OUTGOING_BODY_CHUNK as u64;

/// The fields values (and the bodies of requests and responses) charged to an
/// instance, by handle.
#[derive(Debug, Default)]
pub(crate) struct Charges {
    held: HashMap<u32, Held>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    kind: Kind,
    bytes: u64,
}

/// Which table entry holds the charged fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fields,
    Request,
    Response,
}

impl Kind {
    /// Whether the entry `rep` of this kind is still in the table.
    fn alive(self, table: &ResourceTable, rep: u32) -> bool {
        match self {
            Kind::Fields => table.get(&Resource::<FieldMap>::new_borrow(rep)).is_ok(),
            Kind::Request => table
                .get(&Resource::<HostOutgoingRequest>::new_borrow(rep))
                .is_ok(),
            Kind::Response => table
                .get(&Resource::<HostOutgoingResponse>::new_borrow(rep))
                .is_ok(),
        }
    }
}

/// The size of `fields` as `wasmtime-wasi-http` counts it against its own limit.
fn size(fields: &FieldMap) -> u64 {
    let names: usize = fields
        .keys()
        .map(|k| k.as_str().len() + size_of::<HeaderName>())
        .sum();
    let values: usize = fields
        .values()
        .map(|v| v.len() + size_of::<HeaderValue>())
        .sum();
    u64::try_from(names + values).unwrap_or(u64::MAX)
}

/// What the charges see of an instance: what they hold, the budget, and the resource
/// table (where a handle's liveness is looked up).
pub(crate) struct Charged<'a> {
    pub(crate) charges: &'a mut Charges,
    pub(crate) host_memory: &'a mut HostMemory,
    pub(crate) table: &'a mut ResourceTable,
}

/// The store's view of the charges.
pub(crate) type Getter<T> = fn(&mut T) -> Charged<'_>;

impl Charged<'_> {
    /// Charges the fields `rep` at its size now (`fresh`: a new handle, so whatever
    /// was charged under its number before belongs to a dropped one).
    fn charge_fields(&mut self, rep: u32, fresh: bool) -> wasmtime::Result<()> {
        let bytes = match self.table.get(&Resource::<FieldMap>::new_borrow(rep)) {
            Ok(fields) => size(fields),
            Err(_) => 0,
        };
        let before = match self.charges.held.remove(&rep) {
            Some(h) if h.kind == Kind::Fields && !fresh => h.bytes,
            Some(stale) => {
                self.host_memory.release(stale.bytes);
                0
            }
            None => 0,
        };
        let charged = if bytes <= before {
            self.host_memory.release(before - bytes);
            Ok(())
        } else {
            self.charge_http(bytes - before, WHAT)
        };
        let held = if charged.is_ok() { bytes } else { before };
        let kind = Kind::Fields;
        self.charges.held.insert(rep, Held { kind, bytes: held });
        charged
    }

    /// Charges `bytes` more to the budget; when they do not fit, what dropped handles
    /// held is given back first.
    fn charge_http(&mut self, bytes: u64, what: &'static str) -> wasmtime::Result<()> {
        if self.host_memory.charge(bytes, what).is_ok() {
            return Ok(());
        }
        self.release_dropped();
        self.host_memory
            .charge(bytes, what)
            .map_err(wasmtime::Error::new)
    }

    /// Moves the charge of the headers `fields` to the request or response `to` that
    /// now holds them.
    fn move_fields_charge(&mut self, fields: u32, kind: Kind, to: u32) {
        let bytes = match self.charges.held.remove(&fields) {
            Some(h) if h.kind == Kind::Fields => h.bytes,
            Some(stale) => {
                self.host_memory.release(stale.bytes);
                0
            }
            None => 0,
        };
        if let Some(stale) = self.charges.held.insert(to, Held { kind, bytes }) {
            self.host_memory.release(stale.bytes);
        }
    }

    /// Adds a body's reservation to the charge of the request or response `rep`.
    fn charge_body(&mut self, rep: u32, kind: Kind) -> wasmtime::Result<()> {
        self.charge_http(BODY_RESERVATION, WHAT_BODY)?;
        let held = self
            .charges
            .held
            .entry(rep)
            .or_insert(Held { kind, bytes: 0 });
        if held.kind == kind {
            held.bytes += BODY_RESERVATION;
        } else {
            // A stale entry under a reused number (its handle is gone): give back what
            // it held, and start this one afresh.
            self.host_memory.release(held.bytes);
            *held = Held {
                kind,
                bytes: BODY_RESERVATION,
            };
        }
        Ok(())
    }

    /// Gives back what was charged for handles the guest has dropped, requests sent
    /// and responses set.
    #[cold]
    fn release_dropped(&mut self) {
        let Self {
            charges,
            table,
            host_memory,
        } = self;
        charges.held.retain(|&rep, h| {
            let alive = h.kind.alive(table, rep);
            if !alive {
                host_memory.release(h.bytes);
            }
            alive
        });
    }
}

/// Links the charging functions over `wasmtime-wasi-http`'s (shadowing on), reaching
/// the charges through `charged`.
pub(crate) fn add_to_linker<T: WasiHttpView + 'static>(
    linker: &mut Linker<T>,
    charged: Getter<T>,
) -> wasmtime::Result<()> {
    let mut i = linker.instance(TYPES)?;
    i.func_wrap("[constructor]fields", move |mut store, (): ()| {
        let state = store.data_mut();
        let fields = HostFields::new(&mut state.http())?;
        charged(state).charge_fields(fields.rep(), true)?;
        Ok((fields,))
    })?;
    i.func_wrap(
        "[static]fields.from-list",
        move |mut store, (entries,): (Vec<(String, Vec<u8>)>,)| {
            let state = store.data_mut();
            let r = HostFields::from_list(&mut state.http(), entries);
            let r = match r {
                Ok(fields) => {
                    charged(state).charge_fields(fields.rep(), true)?;
                    Ok(fields)
                }
                Err(e) => Err(header_error(state, e)?),
            };
            Ok((r,))
        },
    )?;
    i.func_wrap(
        "[method]fields.set",
        move |mut store, (fields, name, values): (Resource<FieldMap>, String, Vec<Vec<u8>>)| {
            let state = store.data_mut();
            let rep = fields.rep();
            let r = HostFields::set(&mut state.http(), fields, name, values);
            Ok((settle(state, charged, rep, r)?,))
        },
    )?;
    i.func_wrap(
        "[method]fields.append",
        move |mut store, (fields, name, value): (Resource<FieldMap>, String, Vec<u8>)| {
            let state = store.data_mut();
            let rep = fields.rep();
            let r = HostFields::append(&mut state.http(), fields, name, value);
            Ok((settle(state, charged, rep, r)?,))
        },
    )?;
    i.func_wrap(
        "[method]fields.delete",
        move |mut store, (fields, name): (Resource<FieldMap>, String)| {
            let state = store.data_mut();
            let rep = fields.rep();
            let r = HostFields::delete(&mut state.http(), fields, name);
            Ok((settle(state, charged, rep, r)?,))
        },
    )?;
    i.func_wrap(
        "[method]fields.clone",
        move |mut store, (fields,): (Resource<FieldMap>,)| {
            let state = store.data_mut();
            let copy = HostFields::clone(&mut state.http(), fields)?;
            charged(state).charge_fields(copy.rep(), true)?;
            Ok((copy,))
        },
    )?;
    i.func_wrap(
        "[constructor]outgoing-request",
        move |mut store, (headers,): (Resource<FieldMap>,)| {
            let state = store.data_mut();
            let rep = headers.rep();
            let request = types::HostOutgoingRequest::new(&mut state.http(), headers)?;
            charged(state).move_fields_charge(rep, Kind::Request, request.rep());
            Ok((request,))
        },
    )?;
    i.func_wrap(
        "[constructor]outgoing-response",
        move |mut store, (headers,): (Resource<FieldMap>,)| {
            let state = store.data_mut();
            let rep = headers.rep();
            let response = types::HostOutgoingResponse::new(&mut state.http(), headers)?;
            charged(state).move_fields_charge(rep, Kind::Response, response.rep());
            Ok((response,))
        },
    )?;
    i.func_wrap(
        "[method]outgoing-request.body",
        move |mut store, (request,): (Resource<HostOutgoingRequest>,)| {
            let state = store.data_mut();
            let rep = request.rep();
            let body = types::HostOutgoingRequest::body(&mut state.http(), request)?;
            if body.is_ok() {
                charged(state).charge_body(rep, Kind::Request)?;
            }
            Ok((body,))
        },
    )?;
    i.func_wrap(
        "[method]outgoing-response.body",
        move |mut store, (response,): (Resource<HostOutgoingResponse>,)| {
            let state = store.data_mut();
            let rep = response.rep();
            let body = types::HostOutgoingResponse::body(&mut state.http(), response)?;
            if body.is_ok() {
                charged(state).charge_body(rep, Kind::Response)?;
            }
            Ok((body,))
        },
    )?;
    Ok(())
}

/// After a change to the fields `rep`: its charge brought up to date, and `r` in the
/// interface's terms.
fn settle<T: WasiHttpView>(
    state: &mut T,
    charged: Getter<T>,
    rep: u32,
    r: wasmtime_wasi_http::p2::HeaderResult<()>,
) -> wasmtime::Result<Result<(), HeaderError>> {
    match r {
        Ok(()) => {
            charged(state).charge_fields(rep, false)?;
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(header_error(state, e)?)),
    }
}

/// `wasmtime-wasi-http`'s error as the interface's, or its trap.
fn header_error<T: WasiHttpView>(
    state: &mut T,
    e: wasmtime_wasi_http::p2::HeaderError,
) -> wasmtime::Result<HeaderError> {
    types::Host::convert_header_error(&mut state.http(), e)
}
