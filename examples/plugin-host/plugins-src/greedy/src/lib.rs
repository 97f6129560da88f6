//! A plugin that wants more than it is given: it imports the key-value store, which its
//! manifest does not grant, so the host refuses to instantiate it.

wit_bindgen::generate!({
    world: "kv-plugin",
    path: "../../wit",
});

use acme::plugins::kv;
use acme::plugins::log::{Level, log};

struct Greedy;

impl Guest for Greedy {
    fn run(input: String) -> String {
        let seen = kv::get("last-input");
        kv::set("last-input", &input);
        log(Level::Info, "stored the input");
        format!("previous input: {seen:?}")
    }
}

export!(Greedy);
