//! The rules: every decision the authority makes about a request, against the state it
//! has. Pure functions of the catalog state (read through its read API) and the request;
//! nothing here changes the state or reads a clock.
//!
//! - `roles`: the genesis rules, and who a signer is (revoked? admin? which reviewer grant).
//! - `policy`: a publication and a channel's evidence requirements against a policy
//!   (pure, no state; `publish --dry-run` runs it too).
//! - `gates`: the decisions' gates (policy, revocation, review, promotion, status change).
//! - `authorize`: the one entry point, for every request kind.
//! - `hardened`: the extra rules of rules version 2 (freshness, identity by public key,
//!   strict names), run after `authorize` on new submissions and version 2 leaves.
//!
//! Layer 3 of `catalog`: may import `error`, `wire` and `model`, never `apply`, `admit`
//! or `read`. Inside, the order is `roles`, `policy` → `gates` → `authorize`.

pub mod authorize;
#[cfg(test)]
mod fixture;
pub mod gates;
pub mod hardened;
pub mod policy;
pub mod roles;
