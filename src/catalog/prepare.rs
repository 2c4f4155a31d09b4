//! The stateless half of [`Catalog::apply`](super::Catalog::apply): parse a leaf and run
//! every check that does not read the catalog state.
//!
//! Split out so replay can prepare many leaves in parallel and keep only the stateful
//! half (signer known, grant, policy, order) on one thread. Parsing dominates the cost
//! of applying a leaf, so this is where replay's parallelism comes from.

use super::admission::{Submission, SubmissionKind};
use super::decisions::DecisionKind;
use super::dsse::Envelope;
use super::error::CatalogError;
use super::leaf::{DecisionAdmission, GenesisLeaf, GrantAdmission, Leaf, PublicationAdmission};
use super::request::DigestSet;
use super::time::parse_rfc3339_ms;

/// A leaf parsed and checked on its own, ready for
/// [`Catalog::apply_prepared`](super::Catalog::apply_prepared).
#[derive(Debug)]
pub struct PreparedLeaf {
    index: u64,
    parsed: Parsed,
}

/// A parsed leaf, its envelope replaced by the checked submission it holds.
#[derive(Debug)]
pub(super) enum Parsed {
    Genesis(GenesisLeaf),
    Grant(GrantAdmission, Submission),
    Publication(PublicationAdmission, Submission),
    Decision(DecisionKind, DecisionAdmission, Submission),
}

impl PreparedLeaf {
    /// Parses leaf `index` strictly (see [`Leaf::parse`]) and, for signed leaves, checks
    /// what needs no state: the envelope's payload validates and is of the leaf's kind,
    /// `requestDigest` is its SHA-256, `acceptedAt` is RFC 3339 and the recorded signer
    /// signed the envelope. Signatures themselves are not verified (see `Catalog::apply`).
    pub fn parse(index: u64, bytes: &[u8]) -> Result<PreparedLeaf, CatalogError> {
        let leaf =
            Leaf::parse(bytes).map_err(|reason| CatalogError::MalformedLeaf { index, reason })?;
        let inv = |reason: String| CatalogError::Invariant { index, reason };
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
        };
        Ok(PreparedLeaf { index, parsed })
    }

    /// A leaf that [`Catalog::admit_as`](super::Catalog::admit_as) has just built from
    /// `sub`: nothing to parse or re-check, since admission produced it.
    pub(super) fn admitted(index: u64, leaf: Leaf, sub: &Submission) -> PreparedLeaf {
        let parsed = match leaf {
            Leaf::Genesis(g) => Parsed::Genesis(g),
            Leaf::Grant(g) => Parsed::Grant(g.admission, sub.clone()),
            Leaf::Publication(p) => Parsed::Publication(p.admission, sub.clone()),
            Leaf::Decision(d) => Parsed::Decision(d.kind, d.admission, sub.clone()),
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
            Parsed::Genesis(_) => None,
            Parsed::Grant(_, sub) | Parsed::Publication(_, sub) | Parsed::Decision(_, _, sub) => {
                Some(sub.dedup_key())
            }
        }
    }

    pub(super) fn into_parsed(self) -> Parsed {
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

/// The stateless checks of a signed leaf; returns the submission its envelope holds.
fn signed_submission(
    envelope: Envelope,
    admission: &impl Admission,
    kind: SubmissionKind,
) -> Result<Submission, String> {
    let signer = admission.signer();
    if !envelope.signatures.iter().any(|s| s.keyid == signer) {
        return Err(format!(
            "the recorded signer {signer} has no signature in the envelope"
        ));
    }
    let sub = Submission::from_envelope(envelope)
        .map_err(|r| format!("the envelope does not validate: {r}"))?;
    if sub.kind() != kind {
        return Err(format!("a {kind:?} leaf holds a {:?} request", sub.kind()));
    }
    if admission.request_digest().sha256 != hex::encode(sub.dedup_key()) {
        return Err("requestDigest is not the SHA-256 of the payload".into());
    }
    let accepted_at = admission.accepted_at();
    if parse_rfc3339_ms(accepted_at).is_none() {
        return Err(format!("acceptedAt {accepted_at:?} is not RFC 3339"));
    }
    Ok(sub)
}
