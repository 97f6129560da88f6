//! Component bytes (seeded with the testkit's fixtures and guests, then mutated):
//! whatever validates is instantiated under small limits and every exported function is
//! called with zero-like arguments. Never a panic, a hang or an escape: errors are only
//! the documented kinds.
#![no_main]

use airssys_wasm_engine::Val;
use airssys_wasm_loader::ComponentLoader;
use libfuzzer_sys::fuzz_target;
use wasmtime::component::Type;
use wasmtime::component::types::ComponentItem;

#[path = "common.rs"]
mod common;

/// A value of type `ty` (zero, empty, first case); `None` for resources.
fn zero(ty: &Type) -> Option<Val> {
    Some(match ty {
        Type::Bool => Val::Bool(false),
        Type::S8 => Val::S8(0),
        Type::U8 => Val::U8(0),
        Type::S16 => Val::S16(0),
        Type::U16 => Val::U16(0),
        Type::S32 => Val::S32(0),
        Type::U32 => Val::U32(0),
        Type::S64 => Val::S64(0),
        Type::U64 => Val::U64(0),
        Type::Float32 => Val::Float32(0.0),
        Type::Float64 => Val::Float64(0.0),
        Type::Char => Val::Char('a'),
        Type::String => Val::String(String::new()),
        Type::List(_) => Val::List(Vec::new()),
        Type::Record(r) => Val::Record(
            r.fields()
                .map(|f| Some((f.name.to_owned(), zero(&f.ty)?)))
                .collect::<Option<_>>()?,
        ),
        Type::Tuple(t) => Val::Tuple(t.types().map(|t| zero(&t)).collect::<Option<_>>()?),
        Type::Variant(v) => {
            let case = v.cases().next()?;
            let payload = match &case.ty {
                Some(t) => Some(Box::new(zero(t)?)),
                None => None,
            };
            Val::Variant(case.name.to_owned(), payload)
        }
        Type::Enum(e) => Val::Enum(e.names().next()?.to_owned()),
        Type::Option(_) => Val::Option(None),
        Type::Result(r) => Val::Result(Ok(match r.ok() {
            Some(t) => Some(Box::new(zero(&t)?)),
            None => None,
        })),
        Type::Flags(_) => Val::Flags(Vec::new()),
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let engine = common::engine();
    let loader = ComponentLoader::new(engine);
    if loader.validate_blocking("fuzz", data).is_err() {
        return;
    }
    common::block_on(async {
        let Ok(component) = loader.load_from_bytes(data).await else {
            return;
        };
        let ty = component.wasmtime_component().component_type();
        let calls: Vec<(String, Vec<Val>)> = ty
            .exports(engine.wasmtime_engine())
            .filter_map(|(name, item)| match item.ty {
                ComponentItem::ComponentFunc(f) => {
                    let args = f
                        .params()
                        .map(|(_, t)| zero(&t))
                        .collect::<Option<Vec<_>>>()?;
                    Some((name.to_owned(), args))
                }
                _ => None,
            })
            .collect();
        let mut instance = match component.instantiate(&common::sandbox()).await {
            Ok(i) => i,
            Err(e) => {
                assert!(
                    e.is_runtime_error() || e.is_limit_error() || e.is_usage_error(),
                    "{e:?}"
                );
                return;
            }
        };
        for (name, args) in calls {
            if let Err(e) = instance.call(&name, &args).await {
                assert!(e.is_runtime_error() || e.is_usage_error(), "{name}: {e:?}");
            }
        }
    });
});
