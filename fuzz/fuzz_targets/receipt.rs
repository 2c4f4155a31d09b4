//! Receipts as a consumer receives them: strict JSON, then offline verification.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srcos_catalog::note::Verifier;
use srcos_catalog::receipt::Receipt;

const LOG_VKEY: &str = include_str!("../../log-format/vectors/receipt/log.vkey");

fuzz_target!(|data: &[u8]| {
    if let Ok(receipt) = Receipt::from_json(data) {
        if let Ok(key) = Verifier::from_vkey(LOG_VKEY.trim()) {
            let _ = receipt.verify(&key);
        }
    }
});
