//! Decision payloads (policy, revocation, review, promotion, status change): the first
//! byte picks the kind, the rest is the JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::catalog::{parse_decision, DecisionKind};

const KINDS: [&str; 5] = [
    "PolicySet",
    "PublisherRevoke",
    "Review",
    "Promotion",
    "StatusChange",
];

fuzz_target!(|data: &[u8]| {
    let Some((first, json)) = data.split_first() else {
        return;
    };
    let name = KINDS[*first as usize % KINDS.len()];
    if let Some(kind) = DecisionKind::from_name(name) {
        let _ = parse_decision(kind, json);
    }
});
