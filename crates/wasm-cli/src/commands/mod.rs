//! One module per command; what they share is in `crate::setup`.

pub(crate) mod compile;
pub(crate) mod inspect;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod up;
pub(crate) mod validate;
