//! Test-only: a catalog state built record by record through the model's write API (no
//! signatures, no leaves), for the table tests of the rules.
//!
//! The leaves it stands for:
//! 0 genesis (admin `admin`), 1 a publisher grant to `pub` for `dev` under the images
//! prefix, 2 a reviewer grant to `rev` for any channel there, 3 the same to a second key
//! also named `pub`, 4 a publisher grant to `gone`, 5 its revocation, 6 the publication of
//! entry A (draft in `dev`), 7 the publication of entry B, 8 B's revocation.

use crate::catalog::model::entry::{entry_local_id, DecisionRecord, EntryAction, EntryRecord};
use crate::catalog::model::records::{GrantRecord, PublicationRecord, RevocationRecord};
use crate::catalog::model::state::Catalog;
use crate::catalog::wire::decisions::NewStatus;
use crate::catalog::wire::payload::{
    AgentplaneRefs, ApiVersion, CatalogPublicationRequest, DigestSet, EvidenceItem,
    PublicationRequestKind, PublisherGrantKind, PublisherGrantRequest, Role, Subject,
};
use crate::note::{KeyType, Signer, Verifier};

/// The prefix every grant of the fixture covers.
pub const IMAGES: &str = "sourceos://catalog/images";
const AT: &str = "2026-01-01T00:00:00.000Z";

/// The state and the keys that act in it.
pub struct Fixture {
    pub state: Catalog,
    pub log: Verifier,
    pub admin: Verifier,
    pub publisher: Verifier,
    pub reviewer: Verifier,
    /// A reviewer key named like the publisher.
    pub namesake: Verifier,
    pub gone: Verifier,
    pub stranger: Verifier,
    /// Entry A (leaf 6): its target and subject digest (hex).
    pub entry_target: String,
    pub entry_digest: String,
    /// Entry B (leaf 7), revoked by leaf 8.
    pub revoked_target: String,
    pub revoked_digest: String,
}

impl Fixture {
    /// A deterministic Ed25519 key.
    pub fn key(name: &str, seed: u8) -> Verifier {
        Signer::from_seed(name, KeyType::Ed25519, &[seed; 32])
            .map(|s| s.verifier().clone())
            .unwrap()
    }

    /// The keys, nothing applied.
    pub fn empty() -> Fixture {
        Fixture {
            state: Catalog::new(),
            log: Fixture::key("log.test/x", 1),
            admin: Fixture::key("admin", 2),
            publisher: Fixture::key("pub", 3),
            reviewer: Fixture::key("rev", 4),
            namesake: Fixture::key("pub", 6),
            gone: Fixture::key("gone", 7),
            stranger: Fixture::key("nobody", 8),
            entry_target: format!("{IMAGES}/a"),
            entry_digest: "aa".repeat(32),
            revoked_target: format!("{IMAGES}/c"),
            revoked_digest: "cc".repeat(32),
        }
    }

    /// Leaves 0 to 8 applied.
    pub fn new() -> Fixture {
        let mut f = Fixture::empty();
        let s = &mut f.state;
        s.set_authority(
            "log.test/x".into(),
            f.log.clone(),
            vec![f.admin.clone()],
            AT.into(),
        );
        s.advance();
        let admin = f.admin.short_id();
        let grant = |s: &mut Catalog, key: &Verifier, role: Role, channel: &str| {
            let record = GrantRecord {
                channels: vec![channel.into()],
                granted_at: AT.into(),
                granted_by: admin.clone(),
                leaf_index: s.applied_size(),
                role,
                target_prefixes: vec![IMAGES.into()],
            };
            s.add_grant(key.clone(), record);
            s.advance();
        };
        grant(s, &f.publisher, Role::Publisher, "dev");
        grant(s, &f.reviewer, Role::Reviewer, "*");
        grant(s, &f.namesake, Role::Reviewer, "*");
        grant(s, &f.gone, Role::Publisher, "dev");
        s.add_revocation(
            &f.gone,
            RevocationRecord {
                leaf_index: 5,
                revoked_by: f.admin.short_id(),
            },
        );
        s.advance();
        for (target, digest) in [
            (&f.entry_target, &f.entry_digest),
            (&f.revoked_target, &f.revoked_digest),
        ] {
            let r = publication_request(target, "dev", digest);
            let record = PublicationRecord {
                accepted_at: AT.into(),
                agentplane_refs: r.agentplane_refs.clone(),
                channel: r.channel.clone(),
                evidence: r.evidence.clone(),
                evidence_report: None,
                grant_index: 1,
                leaf_index: s.applied_size(),
                policy_index: 0,
                publisher: f.publisher.short_id(),
                request_digest: "00".repeat(32),
                requester_ref: r.requester_ref.clone(),
                subject_digest: r.subject_digest(),
                subject_name: r.subject.name.clone(),
                target_catalog_ref: r.target_catalog_ref.clone(),
            };
            let id = entry_local_id(target, &r.subject_digest());
            s.add_publication(&record, &id).unwrap();
            s.advance();
        }
        let revoked = EntryRecord {
            decisions: vec![DecisionRecord {
                issued_at: None,
                accepted_at: AT.into(),
                action: EntryAction::StatusChange {
                    status: NewStatus::Revoked,
                },
                leaf_index: 8,
                signer: f.admin.short_id(),
            }],
            id: entry_local_id(&f.revoked_target, &format!("sha256:{}", f.revoked_digest)),
            publication_index: 7,
            subject_digest: format!("sha256:{}", f.revoked_digest),
        };
        s.put_entry(&revoked).unwrap();
        s.advance();
        f
    }
}

/// A publication request to `target` on `channel` for subject `sha256:<digest>`, carrying
/// the four evidence types the default `dev` policy requires.
pub fn publication_request(target: &str, channel: &str, digest: &str) -> CatalogPublicationRequest {
    let evidence = ["build-receipt", "sbom", "vulnerability-scan", "provenance"]
        .iter()
        .enumerate()
        .map(|(i, t)| EvidenceItem {
            digest: DigestSet {
                sha256: format!("{:064x}", i + 1),
            },
            media_type: "application/json".into(),
            size: 10,
            evidence_type: t.to_string(),
            uri: format!("https://evidence.test/{t}"),
        })
        .collect();
    CatalogPublicationRequest {
        api_version: ApiVersion::V1,
        kind: PublicationRequestKind::CatalogPublicationRequest,
        subject: Subject {
            name: "quay.io/test/image".into(),
            digest: DigestSet {
                sha256: digest.into(),
            },
        },
        target_catalog_ref: target.into(),
        channel: channel.into(),
        requester_ref: "socios://pipeline/test".into(),
        evidence,
        agentplane_refs: AgentplaneRefs::default(),
    }
}

/// A grant of `role` to `key` for `dev` under [`IMAGES`].
pub fn grant_request(key: &Verifier, role: Role) -> PublisherGrantRequest {
    PublisherGrantRequest {
        api_version: ApiVersion::V1,
        kind: PublisherGrantKind::PublisherGrant,
        publisher_key: key.to_vkey(),
        role,
        target_prefixes: vec![IMAGES.into()],
        channels: vec!["dev".into()],
        issued_at: None,
        nonce: None,
    }
}
