//! The two questions asked before every signature: may this be signed
//! (the registry's `Authorize`, A1-A7), and can this key's certificate sign
//! now (N1: validity, path, revocation at signing time).

mod exchange;

use std::sync::Arc;
use std::time::Duration;

use kyso_pki::cert::Cert;
use kyso_proto::registry::v1 as reg;
use kyso_proto::registry::v1::registry_client::RegistryClient;
use kyso_proto::signer::v1 as pb;
use kyso_validation::report::{Indication, RevocationPolicy};
use kyso_validation::verify::Verifier;
use time::OffsetDateTime;
use tonic::Code;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::error::{Error, Refusal, Result};

/// The registry, asked on every request; the signer fails closed when it
/// cannot answer.
#[derive(Clone, Debug)]
pub struct Registry {
    client: RegistryClient<Channel>,
    timeout: Duration,
}

/// The registry's yes, with who signs.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    /// Holder of the certificate (person or organisation).
    pub holder_name: String,
    /// Title the signature is made under.
    pub title: String,
    /// Delegator for KT./TL./TUQ.
    pub on_behalf_of: String,
}

impl Registry {
    /// A lazily connecting client: the signer starts even when the registry
    /// is down, and refuses to sign until it answers.
    pub fn connect_lazy(
        url: &str,
        tls: Option<ClientTlsConfig>,
        timeout: Duration,
    ) -> Result<Self> {
        let mut ep = Endpoint::from_shared(url.to_owned())
            .map_err(|e| Error::Config(vec![format!("registry.url: {e}")]))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true);
        if let Some(tls) = tls {
            ep = ep.tls_config(tls)?;
        }
        Ok(Self {
            client: RegistryClient::new(ep.connect_lazy()),
            timeout,
        })
    }

    /// `Authorize`: allowed, refused with every failed rule, or unavailable.
    pub async fn authorize(
        &self,
        fingerprint_hex: &str,
        ctx: &pb::SigningContext,
        at: OffsetDateTime,
    ) -> Result<Decision> {
        let req = reg::AuthorizeRequest {
            fingerprint: fingerprint_hex.to_owned(),
            acting_person_id: ctx.acting_person_id.clone(),
            organisation_id: ctx.organisation_id.clone(),
            document_type: ctx
                .document
                .as_ref()
                .map(|d| d.document_type.clone())
                .unwrap_or_default(),
            profile: ctx.profile,
            mode: ctx.mode,
            at: Some(prost_types::Timestamp {
                seconds: at.unix_timestamp(),
                nanos: 0,
            }),
        };
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        let answer = match client.authorize(request).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                return Err(match s.code() {
                    // The registry judged the request itself malformed: the
                    // caller's fault, reported as such.
                    Code::InvalidArgument | Code::NotFound => Error::InvalidField {
                        field: "context",
                        reason: format!("registry: {}", s.message()),
                    },
                    _ => Error::RegistryUnavailable {
                        reason: format!("{:?}: {}", s.code(), s.message()),
                    },
                });
            }
        };
        if answer.allowed {
            Ok(Decision {
                holder_name: answer.holder_name,
                title: answer.title,
                on_behalf_of: answer.on_behalf_of,
            })
        } else if answer.refusals.is_empty() {
            // A "no" without a reason is not something to sign on.
            Err(Error::Refused(vec![Refusal {
                rule: "registry".into(),
                reason: "the registry refused without naming a rule".into(),
            }]))
        } else {
            Err(Error::Refused(
                answer
                    .refusals
                    .into_iter()
                    .map(|r| Refusal {
                        rule: r.rule,
                        reason: r.reason,
                    })
                    .collect(),
            ))
        }
    }

    /// `RegisterDocument` (W1, W3): an entry of the outgoing or incoming register. The
    /// document is already signed and stored when this is asked, so a registry that does
    /// not answer is UNAVAILABLE for the caller to retry the entry, not a lost signature.
    pub async fn register_document(
        &self,
        req: reg::RegisterDocumentRequest,
    ) -> Result<reg::RegisterEntry> {
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        match client.register_document(request).await {
            Ok(r) => r
                .into_inner()
                .entry
                .ok_or_else(|| Error::RegistryUnavailable {
                    reason: "RegisterDocument answered without the entry".into(),
                }),
            Err(s) if matches!(s.code(), Code::InvalidArgument | Code::NotFound) => {
                Err(Error::InvalidField {
                    field: "register",
                    reason: format!("registry: {}", s.message()),
                })
            }
            Err(s) => Err(Error::RegistryUnavailable {
                reason: format!("{:?}: {}", s.code(), s.message()),
            }),
        }
    }

    /// `ListRegister` for one document: the entries of `organisation_id`'s register in
    /// `direction` that hold `sha256` (a retried request finds the entry it made before a
    /// crash, instead of taking a second number).
    pub async fn register_entries(
        &self,
        organisation_id: &str,
        direction: reg::Direction,
        sha256: &str,
    ) -> Result<Vec<reg::RegisterEntry>> {
        let mut request = tonic::Request::new(reg::ListRegisterRequest {
            organisation_id: organisation_id.to_owned(),
            direction: direction as i32,
            year: 0,
            sha256: sha256.to_owned(),
            number_and_symbol: String::new(),
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        match client.list_register(request).await {
            Ok(r) => Ok(r.into_inner().entries),
            Err(s) => Err(Error::RegistryUnavailable {
                reason: format!("ListRegister: {:?}: {}", s.code(), s.message()),
            }),
        }
    }

    /// `FindOrganisations` by registry ID: the organisation's name and code (Decision
    /// 20/2020), for the `From` of an edXML envelope (N6). Unknown: refused as bad input.
    pub async fn organisation(&self, organisation_id: &str) -> Result<reg::OrganisationMatch> {
        let mut request = tonic::Request::new(reg::FindOrganisationsRequest {
            id: organisation_id.to_owned(),
            ..Default::default()
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        let found = match client.find_organisations(request).await {
            Ok(r) => r.into_inner().organisations,
            Err(s) => {
                return Err(Error::RegistryUnavailable {
                    reason: format!("FindOrganisations: {:?}: {}", s.code(), s.message()),
                });
            }
        };
        found
            .into_iter()
            .find(|o| o.id == organisation_id)
            .ok_or_else(|| Error::InvalidField {
                field: "organisation_id",
                reason: format!("no organisation {organisation_id:?} in the registry"),
            })
    }

    /// `LatestUnlock` (I5): when the last unlock of the key device of the certificate
    /// `fingerprint` was done (Unix seconds), if ever. Fails closed: no answer, no unlock.
    pub async fn latest_unlock(&self, fingerprint: &str) -> Result<Option<i64>> {
        let mut request = tonic::Request::new(reg::LatestUnlockRequest {
            fingerprint: fingerprint.to_owned(),
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        match client.latest_unlock(request).await {
            Ok(r) => Ok(r
                .into_inner()
                .request
                .and_then(|u| u.resolved_at)
                .map(|t| t.seconds)),
            Err(s) => Err(Error::RegistryUnavailable {
                reason: format!("LatestUnlock: {:?}: {}", s.code(), s.message()),
            }),
        }
    }

    /// `RecordUsage` (R2): a batch of signature counts, as the usage reporter sends it.
    pub async fn record_usage(
        &self,
        req: reg::RecordUsageRequest,
    ) -> std::result::Result<reg::RecordUsageResponse, tonic::Status> {
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        Ok(client.record_usage(request).await?.into_inner())
    }

    /// `RecordAuditAnchor`: the head of this signer's audit log (see `anchor`).
    pub async fn record_audit_anchor(
        &self,
        req: reg::RecordAuditAnchorRequest,
    ) -> std::result::Result<reg::RecordAuditAnchorResponse, tonic::Status> {
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        Ok(client.record_audit_anchor(request).await?.into_inner())
    }

    /// `GetLatestAuditAnchor`: the last anchor of a log, if any.
    pub async fn latest_audit_anchor(
        &self,
        log_id: &str,
    ) -> std::result::Result<Option<reg::AuditAnchor>, tonic::Status> {
        let mut request = tonic::Request::new(reg::GetLatestAuditAnchorRequest {
            log_id: log_id.to_owned(),
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        Ok(client
            .get_latest_audit_anchor(request)
            .await?
            .into_inner()
            .anchor)
    }
}

impl Registry {
    /// `CheckSeal` (issue 13): may the seal be applied as SCANNED_ISSUE, COPY or APPENDIX?
    /// Allowed (with the register entry found, for COPY and APPENDIX), refused with every
    /// failed rule (D2, A3, A6, P3, D5), or unavailable: the signer fails closed.
    pub async fn check_seal(
        &self,
        req: reg::CheckSealRequest,
    ) -> Result<Option<reg::RegisterEntry>> {
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        let answer = match client.check_seal(request).await {
            Ok(r) => r.into_inner(),
            Err(s) if matches!(s.code(), Code::InvalidArgument | Code::NotFound) => {
                return Err(Error::InvalidField {
                    field: "context",
                    reason: format!("registry: {}", s.message()),
                });
            }
            Err(s) => {
                return Err(Error::RegistryUnavailable {
                    reason: format!("{:?}: {}", s.code(), s.message()),
                });
            }
        };
        if answer.allowed && answer.refusals.is_empty() {
            return Ok(answer.entry);
        }
        let mut refusals: Vec<Refusal> = answer
            .refusals
            .into_iter()
            .map(|r| Refusal {
                rule: r.rule,
                reason: r.reason,
            })
            .collect();
        if refusals.is_empty() {
            // A "no" without a reason is not something to sign on.
            refusals.push(Refusal {
                rule: "registry".into(),
                reason: "the registry refused the seal without naming a rule".into(),
            });
        }
        Err(Error::Refused(refusals))
    }
}

/// What `CheckAuthority` said of one certificate.
#[derive(Clone, Debug)]
pub struct Authority {
    /// The holder's title had authority for the type then.
    pub authorised: bool,
    /// A personal certificate.
    pub personal: bool,
    /// Holder's name, for messages.
    pub holder_name: String,
    /// The organisation (registry ID) where the authority counts.
    pub organisation_id: String,
    /// Its name, for messages.
    pub organisation_name: String,
    /// Why not, when not.
    pub reasons: Vec<String>,
    /// The registry judged the certificate (it answered); false when it refused the question
    /// (an unknown certificate or document type): then `CheckJurisdiction` says whether the
    /// signer is outside this registry (A4).
    pub judged: bool,
}

impl Registry {
    /// `CheckAuthority`: did this certificate's holder have authority for
    /// `document_type` at `at` (A2, A3)?
    pub async fn check_authority(
        &self,
        fingerprint_hex: &str,
        document_type: &str,
        at: OffsetDateTime,
    ) -> Result<Authority> {
        let mut request = tonic::Request::new(reg::CheckAuthorityRequest {
            fingerprint: fingerprint_hex.to_owned(),
            document_type: document_type.to_owned(),
            at: Some(prost_types::Timestamp {
                seconds: at.unix_timestamp(),
                nanos: 0,
            }),
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        match client.check_authority(request).await {
            Ok(r) => {
                let r = r.into_inner();
                Ok(Authority {
                    authorised: r.authorised,
                    personal: r.kind == reg::CertificateKind::Personal as i32,
                    holder_name: r.holder_name,
                    organisation_id: r.organisation_id,
                    organisation_name: r.organisation_name,
                    reasons: r
                        .refusals
                        .into_iter()
                        .map(|x| format!("{} {}", x.rule, x.reason))
                        .collect(),
                    judged: true,
                })
            }
            // A certificate the registry does not know has no authority.
            Err(s) if matches!(s.code(), Code::NotFound | Code::InvalidArgument) => Ok(Authority {
                authorised: false,
                personal: false,
                holder_name: String::new(),
                organisation_id: String::new(),
                organisation_name: String::new(),
                reasons: vec![format!("registry: {}", s.message())],
                judged: false,
            }),
            Err(s) => Err(Error::RegistryUnavailable {
                reason: format!("{:?}: {}", s.code(), s.message()),
            }),
        }
    }
}

impl Registry {
    /// `CheckJurisdiction` (A4): is a certificate the registry does not know one of an
    /// organisation it manages? A refused question (a malformed sender code) is the caller's
    /// fault; no answer is unavailable: the document flow fails closed.
    pub async fn check_jurisdiction(
        &self,
        req: reg::CheckJurisdictionRequest,
    ) -> Result<reg::CheckJurisdictionResponse> {
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        match client.check_jurisdiction(request).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s) if s.code() == Code::InvalidArgument => Err(Error::InvalidField {
                field: "sender_code",
                reason: format!("registry: {}", s.message()),
            }),
            Err(s) => Err(Error::RegistryUnavailable {
                reason: format!("CheckJurisdiction: {:?}: {}", s.code(), s.message()),
            }),
        }
    }
}

impl Registry {
    /// `FindCertificates` (issue 15, item 8): the DER of the certificates in the registry's
    /// book by issuer and serial or by subject key identifier (certbook.rs).
    pub async fn find_certificates(
        &self,
        req: reg::FindCertificatesRequest,
    ) -> Result<Vec<Vec<u8>>> {
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        match client.find_certificates(request).await {
            Ok(r) => Ok(r.into_inner().der),
            Err(s) => Err(Error::RegistryUnavailable {
                reason: format!("FindCertificates: {:?}: {}", s.code(), s.message()),
            }),
        }
    }
}

/// N1: the signer checks its own certificate before signing. A pass is
/// reused for `ttl` (the revocation answers behind it are cached anyway);
/// validity dates are checked on every call because they are free.
#[derive(Clone, Debug)]
pub struct OwnCheck {
    verifier: Verifier,
    passed: moka::future::Cache<[u8; 32], ()>,
}

impl OwnCheck {
    /// A checker over a verifier configured with the government roots.
    pub fn new(verifier: Verifier, ttl: Duration) -> Self {
        Self {
            verifier,
            passed: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Ok when `cert` (with `chain`) is valid, chains to an anchor and is
    /// not revoked or on hold at `now`, with revocation required.
    pub async fn check(
        &self,
        key: &str,
        cert: &Cert,
        chain: &[Cert],
        now: OffsetDateTime,
    ) -> Result<()> {
        if now < cert.not_before() || now > cert.not_after() {
            return Err(Error::OwnCertificate {
                key: key.to_owned(),
                reason: format!(
                    "outside its validity {} .. {}",
                    cert.not_before(),
                    cert.not_after()
                ),
            });
        }
        if self.passed.get(cert.fingerprint()).await.is_some() {
            return Ok(());
        }
        let mut full = Vec::with_capacity(chain.len() + 1);
        full.push(cert.clone());
        full.extend(chain.iter().cloned());
        let report = self
            .verifier
            .check_certificate(&full, None, Some(RevocationPolicy::Require), now)
            .await
            .map_err(|e| Error::OwnCertificate {
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        if report.indication != Indication::TotalPassed {
            return Err(Error::OwnCertificate {
                key: key.to_owned(),
                reason: match report.sub_indication {
                    Some(s) => format!("{s:?}: {}", report.message),
                    None => report.message,
                },
            });
        }
        self.passed.insert(*cert.fingerprint(), ()).await;
        Ok(())
    }

    /// The verifier behind the check (also used for approvals, A6).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Forgets passes (after a configuration or revocation change).
    pub fn invalidate(&self) {
        self.passed.invalidate_all();
    }
}

/// Shared handle.
pub type SharedOwnCheck = Arc<OwnCheck>;
