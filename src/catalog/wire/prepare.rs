//! The stateless half of [`Catalog::apply`](crate::catalog::Catalog::apply): parse a leaf
//! and run every check that does not read the catalog state.
//!
//! Split out so replay can prepare many leaves in parallel and keep only the stateful
//! half (signer known, grant, policy, order) on one thread. Parsing dominates the cost
//! of applying a leaf, so this is where replay's parallelism comes from.
//!
//! May import, from `catalog`: `error`, and in `wire` the layers below it (`time`, `dsse`,
//! `payload`, `decisions`, `leaf`, `submission`).

use super::decisions::DecisionKind;
use super::dsse::Envelope;
use super::leaf::{
    DecisionAdmission, GenesisLeaf, GrantAdmission, Leaf, PublicationAdmission, StateCommitmentLeaf,
};
use super::payload::DigestSet;
use super::submission::{Submission, SubmissionKind};
use super::time::parse_rfc3339_ms;
use crate::catalog::error::{CatalogError, Refusal};

/// A leaf parsed and checked on its own, ready for
/// [`Catalog::apply_prepared`](crate::catalog::Catalog::apply_prepared).
#[derive(Debug)]
pub struct PreparedLeaf {
    index: u64,
    parsed: Parsed,
}

/// A parsed leaf, its envelope replaced by the checked submission it holds.
#[derive(Debug)]
pub(in crate::catalog) enum Parsed {
    Genesis(GenesisLeaf),
    Grant(GrantAdmission, Submission),
    Publication(PublicationAdmission, Submission),
    Decision(DecisionKind, DecisionAdmission, Submission),
    StateCommitment(StateCommitmentLeaf),
}

impl PreparedLeaf {
    /// Parses leaf `index` strictly (see [`Leaf::parse`]) and, for signed leaves, checks
    /// what needs no state: the envelope's payload validates and is of the leaf's kind,
    /// `requestDigest` is its SHA-256, `acceptedAt` is RFC 3339 and the recorded signer
    /// signed the envelope. Signatures themselves are not verified (see `Catalog::apply`).
    pub fn parse(index: u64, bytes: &[u8]) -> Result<PreparedLeaf, CatalogError> {
        let leaf = Leaf::parse(bytes).map_err(|e| CatalogError::MalformedLeaf {
            index,
            reason: e.to_string(),
        })?;
        let inv = |e: SignedLeafError| CatalogError::Invariant {
            index,
            reason: e.to_string(),
        };
        let parsed = match leaf {
            Leaf::Genesis(g) => Parsed::Genesis(g),
            Leaf::Grant(g) => {
                let sub = signed_submission(g.envelope, &g.admission, SubmissionKind::Grant);
                Parsed::Grant(g.admission, sub.map_err(inv)?)
            }
            Leaf::Publication(p) => {
                let kind = SubmissionKind::Publication;
                let sub = signed_submission(p.envelope, &p.admission, kind);
                Parsed::Publication(p.admission, sub.map_err(inv)?)
            }
            Leaf::Decision(d) => {
                let kind = SubmissionKind::Decision(d.kind);
                let sub = signed_submission(d.envelope, &d.admission, kind);
                Parsed::Decision(d.kind, d.admission, sub.map_err(inv)?)
            }
            Leaf::StateCommitment(c) => {
                let bad = |reason: String| CatalogError::Invariant { index, reason };
                // It names a size up to its own (`state.md` §5: the sequencer commits
                // the size its map thread has finished); which sizes exactly is the
                // map follower's check.
                if c.tree_size > index {
                    return Err(bad(format!(
                        "a StateCommitment at leaf {index} commits to the later size {}",
                        c.tree_size
                    )));
                }
                let hex_ok = c.root.len() == 64
                    && c.root
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !hex_ok {
                    return Err(bad("root is not 64 lowercase hex digits".into()));
                }
                if parse_rfc3339_ms(&c.committed_at).is_none() {
                    return Err(bad(format!(
                        "committedAt {:?} is not RFC 3339",
                        c.committed_at
                    )));
                }
                Parsed::StateCommitment(c)
            }
        };
        Ok(PreparedLeaf { index, parsed })
    }

    /// A leaf that [`Catalog::admit_as`](crate::catalog::Catalog::admit_as) has just built
    /// from `sub`: nothing to parse or re-check, since admission produced it.
    pub(in crate::catalog) fn admitted(index: u64, leaf: Leaf, sub: &Submission) -> PreparedLeaf {
        let parsed = match leaf {
            Leaf::Genesis(g) => Parsed::Genesis(g),
            Leaf::Grant(g) => Parsed::Grant(g.admission, sub.clone()),
            Leaf::Publication(p) => Parsed::Publication(p.admission, sub.clone()),
            Leaf::Decision(d) => Parsed::Decision(d.kind, d.admission, sub.clone()),
            Leaf::StateCommitment(c) => Parsed::StateCommitment(c),
        };
        PreparedLeaf { index, parsed }
    }

    /// The leaf's index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The dedup key of the request it holds (its `requestDigest`, checked by
    /// [`PreparedLeaf::parse`]); genesis has none.
    pub fn dedup_key(&self) -> Option<[u8; 32]> {
        match &self.parsed {
            Parsed::Genesis(_) | Parsed::StateCommitment(_) => None,
            Parsed::Grant(_, sub) | Parsed::Publication(_, sub) | Parsed::Decision(_, _, sub) => {
                Some(sub.dedup_key())
            }
        }
    }

    /// The keys this leaf makes known to the authority, as `apply` records them:
    /// genesis's admin keys and a grant's publisher key (no other leaf adds one, and
    /// none removes one: revocations are checked against the state). A frontend folds
    /// these to verify signatures without the catalog. A key that does not parse is
    /// left out (`apply` refuses such a leaf).
    pub fn introduced_keys(&self) -> Vec<crate::note::Verifier> {
        let parse = |k: &String| crate::note::Verifier::from_vkey(k).ok();
        match &self.parsed {
            Parsed::Genesis(g) => g.admin_keys.iter().filter_map(parse).collect(),
            Parsed::Grant(_, sub) => sub
                .grant()
                .and_then(|g| parse(&g.publisher_key))
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The parsed leaf, for `apply`.
    pub(in crate::catalog) fn into_parsed(self) -> Parsed {
        self.parsed
    }
}

/// What every admission record holds.
trait Admission {
    fn signer(&self) -> &str;
    fn accepted_at(&self) -> &str;
    fn request_digest(&self) -> &DigestSet;
}

macro_rules! admission {
    ($($t:ty),*) => {$(
        impl Admission for $t {
            fn signer(&self) -> &str {
                &self.signer
            }
            fn accepted_at(&self) -> &str {
                &self.accepted_at
            }
            fn request_digest(&self) -> &DigestSet {
                &self.request_digest
            }
        }
    )*};
}
admission!(GrantAdmission, PublicationAdmission, DecisionAdmission);

/// Why a signed leaf fails the checks that need no state.
#[derive(Debug, thiserror::Error)]
enum SignedLeafError {
    /// The recorded signer (its short id) did not sign the envelope.
    #[error("the recorded signer {0} has no signature in the envelope")]
    SignerAbsent(String),
    /// The envelope or its payload does not validate.
    #[error("the envelope does not validate: {0}")]
    Envelope(Refusal),
    /// The leaf's kind and its request's kind differ.
    #[error("a {leaf:?} leaf holds a {request:?} request")]
    KindMismatch {
        leaf: SubmissionKind,
        request: SubmissionKind,
    },
    /// `requestDigest` is not the SHA-256 of the payload.
    #[error("requestDigest is not the SHA-256 of the payload")]
    RequestDigest,
    /// `acceptedAt` (as recorded) is not RFC 3339 milliseconds.
    #[error("acceptedAt {0:?} is not RFC 3339")]
    AcceptedAt(String),
}

/// The stateless checks of a signed leaf; returns the submission its envelope holds.
fn signed_submission(
    envelope: Envelope,
    admission: &impl Admission,
    kind: SubmissionKind,
) -> Result<Submission, SignedLeafError> {
    let signer = admission.signer();
    if !envelope.signatures.iter().any(|s| s.keyid == signer) {
        return Err(SignedLeafError::SignerAbsent(signer.to_string()));
    }
    let sub = Submission::from_envelope(envelope).map_err(SignedLeafError::Envelope)?;
    if sub.kind() != kind {
        return Err(SignedLeafError::KindMismatch {
            leaf: kind,
            request: sub.kind(),
        });
    }
    let mut digest = [0u8; 64];
    // Encoding 32 bytes into 64 cannot fail; the comparison is `!= hex::encode(..)`.
    let encoded = hex::encode_to_slice(sub.dedup_key(), &mut digest).is_ok();
    if !encoded || admission.request_digest().sha256.as_bytes() != digest {
        return Err(SignedLeafError::RequestDigest);
    }
    let accepted_at = admission.accepted_at();
    if parse_rfc3339_ms(accepted_at).is_none() {
        return Err(SignedLeafError::AcceptedAt(accepted_at.to_string()));
    }
    Ok(sub)
}
