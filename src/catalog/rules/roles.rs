//! Who holds which role: the genesis rules for the authority's keys ([`check_genesis`]),
//! and the questions every other rule asks about a signer: revoked? an admin? which
//! reviewer grant covers a target and channel?
//!
//! May import `catalog::error`, `catalog::wire` and `catalog::model` (the state's read
//! API); nothing else of `catalog`.

use crate::catalog::error::Refusal;
use crate::catalog::model::records::GrantRecord;
use crate::catalog::model::state::Catalog;
use crate::catalog::wire::payload::Role;
use crate::catalog::wire::validate::{check_token, FieldError};
use crate::note::{KeyType, Verifier};

/// At most this many admin keys at genesis.
pub const MAX_ADMINS: usize = 16;
/// Longest origin, in characters.
pub const MAX_ORIGIN_CHARS: usize = 255;

/// Why genesis parameters cannot form an authority.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The origin is not a token of at most [`MAX_ORIGIN_CHARS`] characters.
    #[error("origin {0}")]
    Origin(FieldError),
    /// The log key is not named after the origin.
    #[error("the log key is named {name:?} but must be named after the origin {origin:?}")]
    LogKeyName {
        /// The log key's name.
        name: String,
        /// The origin.
        origin: String,
    },
    /// The log key is not an Ed25519 key.
    #[error("the log key must be an Ed25519 key")]
    LogKeyType,
    /// Not 1 to [`MAX_ADMINS`] admin keys (the number given).
    #[error("there must be 1 to {max} admin keys, found {0}", max = MAX_ADMINS)]
    AdminCount(usize),
    /// An admin key (its short id) is not an Ed25519 key.
    #[error("admin key {0} must be an Ed25519 key")]
    AdminKeyType(String),
    /// An admin key (its short id) is the log key, or shares its short id.
    #[error("admin key {0} must differ from the log key")]
    AdminIsLogKey(String),
    /// An admin key (its short id) is listed twice, or shares a short id with another.
    #[error("admin key {0} is listed twice")]
    AdminTwice(String),
}

/// Checks genesis parameters; shared by `genesis_leaf` and `apply`.
pub(in crate::catalog) fn check_genesis(
    origin: &str,
    log_key: &Verifier,
    admins: &[Verifier],
) -> Result<(), GenesisError> {
    check_token(origin, MAX_ORIGIN_CHARS).map_err(GenesisError::Origin)?;
    if log_key.name() != origin {
        return Err(GenesisError::LogKeyName {
            name: log_key.name().to_string(),
            origin: origin.to_string(),
        });
    }
    if !matches!(log_key.key_type(), KeyType::Ed25519) {
        return Err(GenesisError::LogKeyType);
    }
    if admins.is_empty() || admins.len() > MAX_ADMINS {
        return Err(GenesisError::AdminCount(admins.len()));
    }
    for (i, a) in admins.iter().enumerate() {
        if !matches!(a.key_type(), KeyType::Ed25519) {
            return Err(GenesisError::AdminKeyType(a.short_id()));
        }
        if a.public_key() == log_key.public_key() || a.short_id() == log_key.short_id() {
            return Err(GenesisError::AdminIsLogKey(a.short_id()));
        }
        if admins[..i]
            .iter()
            .any(|b| b.public_key() == a.public_key() || b.short_id() == a.short_id())
        {
            return Err(GenesisError::AdminTwice(a.short_id()));
        }
    }
    Ok(())
}

/// A 403 with this message.
pub(super) fn forbidden(m: impl Into<String>) -> Refusal {
    Refusal::Forbidden(m.into())
}

/// 403 if `signer` was revoked.
pub(super) fn check_not_revoked(state: &Catalog, signer: &Verifier) -> Result<(), Refusal> {
    let id = signer.short_id();
    match state.revocation(&id) {
        Some(r) => Err(forbidden(format!(
            "key {id} was revoked by leaf {}; it can no longer publish, review or be granted",
            r.leaf_index
        ))),
        None => Ok(()),
    }
}

/// 403 unless `signer` is an admin; `what` completes "only admins may ...".
pub(super) fn require_admin(state: &Catalog, signer: &Verifier, what: &str) -> Result<(), Refusal> {
    if state.is_admin(signer) {
        Ok(())
    } else {
        Err(forbidden(format!(
            "key {} is not an admin of this authority; only admins may {what}",
            signer.short_id()
        )))
    }
}

/// The first reviewer grant (leaf order) of `signer` covering `target` and `channel`.
fn reviewer_grant<'a>(
    state: &'a Catalog,
    signer: &Verifier,
    target: &str,
    channel: &str,
) -> Option<&'a GrantRecord> {
    state
        .grants_of(signer)
        .iter()
        .find(|g| g.role == Role::Reviewer && g.covers_target(target) && g.covers_channel(channel))
}

/// A reviewer grant for (target, channel), or admin rights when `admin_ok`: the index of
/// the grant, `None` for an admin. `what` completes "it may not ...".
pub(super) fn reviewer_or_admin(
    state: &Catalog,
    signer: &Verifier,
    target: &str,
    channel: &str,
    admin_ok: bool,
    what: &str,
) -> Result<Option<u64>, Refusal> {
    check_not_revoked(state, signer)?;
    if admin_ok && state.is_admin(signer) {
        return Ok(None);
    }
    match reviewer_grant(state, signer, target, channel) {
        Some(g) => Ok(Some(g.leaf_index)),
        None => Err(forbidden(format!(
            "key {} holds no reviewer grant for channel {channel:?} under {target}{}; it may not {what}",
            signer.short_id(),
            if admin_ok { " and is not an admin" } else { "" }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Signer;

    fn key(name: &str, seed: u8) -> Verifier {
        Signer::from_seed(name, KeyType::Ed25519, &[seed; 32])
            .unwrap()
            .verifier()
            .clone()
    }

    #[test]
    fn genesis_parameters() {
        let log = key("log.test/x", 1);
        let a = key("alice", 2);
        let b = key("bob", 3);
        let a_again = key("alice", 2);
        let many: Vec<Verifier> = (0..=MAX_ADMINS as u8).map(|i| key("k", 10 + i)).collect();
        let long_origin = "o".repeat(MAX_ORIGIN_CHARS + 1);
        for (origin, log_key, admins, want) in [
            ("log.test/x", &log, vec![a.clone(), b.clone()], Ok(())),
            (
                "other.test/y",
                &log,
                vec![a.clone()],
                Err(
                    "the log key is named \"log.test/x\" but must be named after the origin \"other.test/y\""
                        .to_string(),
                ),
            ),
            (
                "log.test/x",
                &log,
                vec![],
                Err("there must be 1 to 16 admin keys, found 0".to_string()),
            ),
            (
                "log.test/x",
                &log,
                many,
                Err("there must be 1 to 16 admin keys, found 17".to_string()),
            ),
            (
                "log.test/x",
                &log,
                vec![a.clone(), log.clone()],
                Err(format!("admin key {} must differ from the log key", log.short_id())),
            ),
            (
                "log.test/x",
                &log,
                vec![a.clone(), b.clone(), a_again],
                Err(format!("admin key {} is listed twice", a.short_id())),
            ),
            (
                long_origin.as_str(),
                &log,
                vec![a.clone()],
                Err("origin must be at most 255 characters, found 256".to_string()),
            ),
        ] {
            let got = check_genesis(origin, log_key, &admins).map_err(|e| e.to_string());
            assert_eq!(got, want, "{origin} {admins:?}");
        }
    }
}
