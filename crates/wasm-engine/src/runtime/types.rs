//! WIT-like rendering of component types, and checking dynamic values against them.

use std::fmt::Write as _;

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Type, Val};

/// One exported (or imported) item of a component, described WIT-like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInfo {
    /// The name to call it by: `double`, or `my:pkg/iface#double` for a function in
    /// an exported interface.
    pub name: String,
    /// What it is: `func(x: s32) -> s32`, `instance`, `resource`, …
    pub signature: String,
    /// Whether it is a function that can be called with `call`.
    pub is_func: bool,
}

impl std::fmt::Display for ItemInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.signature)
    }
}

/// Flattens a component's imports or exports, descending one level into instances:
/// calls `f` with each item and the name to call it by (`func`, or `iface#func` inside
/// an instance) — the names `CompiledComponent::export_func` resolves one by one.
fn walk_items<'a>(
    engine: &wasmtime::Engine,
    items: impl Iterator<Item = (&'a str, ComponentItem)>,
    prefix: Option<&str>,
    f: &mut dyn FnMut(String, ComponentItem),
) {
    for (name, item) in items {
        let full = match prefix {
            Some(p) => format!("{p}#{name}"),
            None => name.to_owned(),
        };
        if let (ComponentItem::ComponentInstance(inst), None) = (&item, prefix) {
            let nested: Vec<_> = inst.exports(engine).map(|(n, e)| (n, e.ty)).collect();
            if !nested.is_empty() {
                walk_items(engine, nested.into_iter(), Some(&full), f);
                continue;
            }
        }
        f(full, item);
    }
}

/// Flattens a component's imports or exports into [`ItemInfo`]s ([`walk_items`]).
pub(crate) fn describe_items<'a>(
    engine: &wasmtime::Engine,
    items: impl Iterator<Item = (&'a str, ComponentItem)>,
) -> Vec<ItemInfo> {
    let mut out = Vec::new();
    walk_items(engine, items, None, &mut |name, item| {
        out.push(match item {
            ComponentItem::ComponentFunc(f) => ItemInfo {
                name,
                signature: render_func(&f),
                is_func: true,
            },
            ComponentItem::ComponentInstance(_) => other(name, "instance"),
            ComponentItem::CoreFunc(_) => other(name, "core func"),
            ComponentItem::Module(_) => other(name, "core module"),
            ComponentItem::Component(_) => other(name, "component"),
            ComponentItem::Type(t) => other(name, &format!("type {}", render_type(&t))),
            ComponentItem::Resource(_) => other(name, "resource"),
        });
    });
    out
}

fn other(name: String, signature: &str) -> ItemInfo {
    ItemInfo {
        name,
        signature: signature.to_owned(),
        is_func: false,
    }
}

/// `func(x: s32, y: string) -> string`
pub(crate) fn render_func(f: &ComponentFunc) -> String {
    // WIT's spelling: `async func(…)` for a function of component-model async.
    let mut s = String::from(if f.async_() { "async func(" } else { "func(" });
    for (i, (name, ty)) in f.params().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{name}: {}", render_type(&ty));
    }
    s.push(')');
    let results: Vec<_> = f.results().collect();
    match results.as_slice() {
        [] => {}
        [one] => {
            let _ = write!(s, " -> {}", render_type(one));
        }
        many => {
            let rendered: Vec<_> = many.iter().map(render_type).collect();
            let _ = write!(s, " -> ({})", rendered.join(", "));
        }
    }
    s
}

/// A type in WIT syntax (records, variants, enums and flags inline, as they are
/// structural here).
pub(crate) fn render_type(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", render_type(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", render_type(&l.ty()), l.len()),
        Type::Map(m) => format!(
            "map<{}, {}>",
            render_type(&m.key()),
            render_type(&m.value())
        ),
        Type::Record(r) => {
            let fields: Vec<_> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, render_type(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => {
            let types: Vec<_> = t.types().map(|t| render_type(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<_> = v
                .cases()
                .map(|c| match c.ty {
                    Some(t) => format!("{}({})", c.name, render_type(&t)),
                    None => c.name.to_owned(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", render_type(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", render_type(&ok)),
            (None, Some(err)) => format!("result<_, {}>", render_type(&err)),
            (Some(ok), Some(err)) => {
                format!("result<{}, {}>", render_type(&ok), render_type(&err))
            }
        },
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(f) => match f.ty() {
            Some(t) => format!("future<{}>", render_type(&t)),
            None => "future".into(),
        },
        Type::Stream(s) => match s.ty() {
            Some(t) => format!("stream<{}>", render_type(&t)),
            None => "stream".into(),
        },
        Type::ErrorContext => "error-context".into(),
    }
}

/// Whether `val` is a value of type `ty` (deeply), so that a mismatch is reported as
/// the caller's mistake before the guest runs.
pub(crate) fn val_matches(val: &Val, ty: &Type) -> bool {
    match (val, ty) {
        (Val::Bool(_), Type::Bool)
        | (Val::S8(_), Type::S8)
        | (Val::U8(_), Type::U8)
        | (Val::S16(_), Type::S16)
        | (Val::U16(_), Type::U16)
        | (Val::S32(_), Type::S32)
        | (Val::U32(_), Type::U32)
        | (Val::S64(_), Type::S64)
        | (Val::U64(_), Type::U64)
        | (Val::Float32(_), Type::Float32)
        | (Val::Float64(_), Type::Float64)
        | (Val::Char(_), Type::Char)
        | (Val::String(_), Type::String) => true,
        (Val::List(items), Type::List(l)) => {
            let inner = l.ty();
            items.iter().all(|v| val_matches(v, &inner))
        }
        (Val::Record(fields), Type::Record(r)) => {
            let expected: Vec<_> = r.fields().collect();
            fields.len() == expected.len()
                && fields
                    .iter()
                    .zip(&expected)
                    .all(|((n, v), f)| n == f.name && val_matches(v, &f.ty))
        }
        (Val::Tuple(vals), Type::Tuple(t)) => {
            let types: Vec<_> = t.types().collect();
            vals.len() == types.len() && vals.iter().zip(&types).all(|(v, t)| val_matches(v, t))
        }
        (Val::Variant(name, payload), Type::Variant(v)) => v.cases().any(|c| {
            c.name == name
                && match (payload, &c.ty) {
                    (None, None) => true,
                    (Some(p), Some(t)) => val_matches(p, t),
                    _ => false,
                }
        }),
        (Val::Enum(name), Type::Enum(e)) => e.names().any(|n| n == name),
        (Val::Option(o), Type::Option(t)) => o.as_deref().is_none_or(|v| val_matches(v, &t.ty())),
        (Val::Result(r), Type::Result(t)) => match r {
            Ok(v) => payload_matches(v.as_deref(), t.ok()),
            Err(v) => payload_matches(v.as_deref(), t.err()),
        },
        (Val::Flags(names), Type::Flags(f)) => {
            let known: Vec<_> = f.names().collect();
            names.iter().all(|n| known.contains(&n.as_str()))
        }
        // Resources, futures, streams, maps: leave the check to Wasmtime.
        (_, Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_)) => true,
        (_, Type::ErrorContext | Type::Map(_) | Type::FixedLengthList(_)) => true,
        _ => false,
    }
}

fn payload_matches(v: Option<&Val>, t: Option<Type>) -> bool {
    match (v, t) {
        (None, None) => true,
        (Some(v), Some(t)) => val_matches(v, &t),
        _ => false,
    }
}

/// A placeholder of the right shape for a result slot.
pub(crate) fn placeholder() -> Val {
    Val::Bool(false)
}
