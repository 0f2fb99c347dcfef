//! The `kyso.registry.v1.Registry` gRPC service: requests converted to the book's domain
//! types and back (convert.rs), `Authorize` and `CheckAuthority` to the store, errors to
//! `Status` (error.rs), and the request and decision metrics.

use std::future::Future;
use std::time::Instant;

use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_server::Registry;
use tonic::{Request, Response, Status};

use crate::access::{Admitted, Call, Gate};
use crate::authority::Refusal;
use crate::book::Book;
use crate::book::shared::need;
use crate::convert;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::Store;

/// Where "now" comes from; tests substitute a fixed clock.
pub use kyso_server::Clock;

/// The service state; cloned per connection, everything inside is shared.
#[derive(Clone)]
pub struct RegistryService {
    book: Book,
    store: Store,
    metrics: Metrics,
    clock: Clock,
    gate: Gate,
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService").finish_non_exhaustive()
    }
}

impl RegistryService {
    /// A service over `store`, admitting calls through `gate` (access/).
    pub fn new(store: Store, metrics: Metrics, clock: Clock, gate: Gate) -> Self {
        Self {
            book: store.book(),
            store,
            metrics,
            clock,
            gate,
        }
    }

    fn now(&self) -> i64 {
        (self.clock)().unix_timestamp()
    }

    /// Runs one call: admission first (the caller's certificate and roles against the right
    /// the call needs, access/call.rs), then the work with its database time, request count
    /// and latency, error mapping.
    async fn call<R, T, Fut>(
        &self,
        call: Call,
        req: &Request<R>,
        f: impl FnOnce(Admitted) -> Fut,
    ) -> Result<Response<T>, Status>
    where
        Fut: Future<Output = Result<T>>,
    {
        let method = call.name();
        let started = Instant::now();
        let out = match self.gate.admit(&self.store, call, req, self.now()).await {
            Ok(who) => self.book.db().timed(method, f(who)).await,
            Err(e) => Err(e),
        };
        self.metrics
            .duration
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &out {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        self.metrics
            .requests
            .with_label_values(&[method, outcome])
            .inc();
        out.map(Response::new).map_err(Status::from)
    }
}

fn refusals(r: Vec<Refusal>) -> Vec<pb::Refusal> {
    r.into_iter()
        .map(|r| pb::Refusal {
            rule: r.rule.to_string(),
            reason: r.reason,
        })
        .collect()
}

#[tonic::async_trait]
impl Registry for RegistryService {
    async fn create_organisation(
        &self,
        req: Request<pb::CreateOrganisationRequest>,
    ) -> Result<Response<pb::CreateOrganisationResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CreateOrganisation, &req, move |who| async move {
            let (change, new) = convert::new_organisation(rq)?;
            let change = who.stamp(change);
            let id = self.book.create_organisation(&change, &new, now).await?;
            Ok(pb::CreateOrganisationResponse { id })
        })
        .await
    }

    async fn set_organisation_status(
        &self,
        req: Request<pb::SetOrganisationStatusRequest>,
    ) -> Result<Response<pb::SetOrganisationStatusResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::SetOrganisationStatus, &req, move |who| async move {
            let (change, status) = convert::organisation_status_change(rq)?;
            let change = who.stamp(change);
            self.book
                .set_organisation_status(&change, &status, now)
                .await?;
            Ok(pb::SetOrganisationStatusResponse {})
        })
        .await
    }

    async fn create_person(
        &self,
        req: Request<pb::CreatePersonRequest>,
    ) -> Result<Response<pb::CreatePersonResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CreatePerson, &req, move |who| async move {
            let (change, new) = convert::new_person(rq)?;
            let change = who.stamp(change);
            let id = self.book.create_person(&change, &new, now).await?;
            Ok(pb::CreatePersonResponse { id })
        })
        .await
    }

    async fn create_title(
        &self,
        req: Request<pb::CreateTitleRequest>,
    ) -> Result<Response<pb::CreateTitleResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CreateTitle, &req, move |who| async move {
            let (change, name) = convert::new_title(rq)?;
            let change = who.stamp(change);
            let id = self.book.create_title(&change, &name, now).await?;
            Ok(pb::CreateTitleResponse { id })
        })
        .await
    }

    async fn create_appointment(
        &self,
        req: Request<pb::CreateAppointmentRequest>,
    ) -> Result<Response<pb::CreateAppointmentResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CreateAppointment, &req, move |who| async move {
            let (change, new) = convert::new_appointment(rq)?;
            let change = who.stamp(change);
            let id = self.book.create_appointment(&change, &new, now).await?;
            Ok(pb::CreateAppointmentResponse { id })
        })
        .await
    }

    async fn create_document_type(
        &self,
        req: Request<pb::CreateDocumentTypeRequest>,
    ) -> Result<Response<pb::CreateDocumentTypeResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CreateDocumentType, &req, move |who| async move {
            let (change, new) = convert::new_document_type(rq)?;
            let change = who.stamp(change);
            self.book.create_document_type(&change, &new, now).await?;
            Ok(pb::CreateDocumentTypeResponse {})
        })
        .await
    }

    async fn grant_authority(
        &self,
        req: Request<pb::GrantAuthorityRequest>,
    ) -> Result<Response<pb::GrantAuthorityResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::GrantAuthority, &req, move |who| async move {
            let (change, grants) = convert::grants(rq)?;
            let change = who.stamp(change);
            self.book.grant_authority(&change, &grants, now).await?;
            Ok(pb::GrantAuthorityResponse {})
        })
        .await
    }

    async fn register_certificate(
        &self,
        req: Request<pb::RegisterCertificateRequest>,
    ) -> Result<Response<pb::RegisterCertificateResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::RegisterCertificate, &req, move |who| async move {
            let (change, new) = convert::new_certificate(rq)?;
            let change = who.stamp(change);
            let c = self.book.register_certificate(&change, &new, now).await?;
            Ok(pb::RegisterCertificateResponse {
                certificate: Some(convert::certificate(c)),
            })
        })
        .await
    }

    async fn change_certificate_status(
        &self,
        req: Request<pb::ChangeCertificateStatusRequest>,
    ) -> Result<Response<pb::ChangeCertificateStatusResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::ChangeCertificateStatus, &req, move |who| async move {
            let (change, status) = convert::status_change(rq)?;
            let change = who.stamp(change);
            let c = self
                .book
                .change_certificate_status(&change, &status, now)
                .await?;
            Ok(pb::ChangeCertificateStatusResponse {
                certificate: Some(convert::certificate(c)),
            })
        })
        .await
    }

    async fn assign_custodian(
        &self,
        req: Request<pb::AssignCustodianRequest>,
    ) -> Result<Response<pb::AssignCustodianResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::AssignCustodian, &req, move |who| async move {
            let (change, assignment) = convert::custodian_assignment(rq)?;
            let change = who.stamp(change);
            let id = self
                .book
                .assign_custodian(&change, &assignment, now)
                .await?;
            Ok(pb::AssignCustodianResponse { id })
        })
        .await
    }

    async fn create_delegation(
        &self,
        req: Request<pb::CreateDelegationRequest>,
    ) -> Result<Response<pb::CreateDelegationResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CreateDelegation, &req, move |who| async move {
            let (change, new) = convert::new_delegation(rq)?;
            let change = who.stamp(change);
            let id = self.book.create_delegation(&change, &new, now).await?;
            Ok(pb::CreateDelegationResponse { id })
        })
        .await
    }

    async fn end_appointment(
        &self,
        req: Request<pb::EndAppointmentRequest>,
    ) -> Result<Response<pb::EndAppointmentResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::EndAppointment, &req, move |who| async move {
            let (change, end) = convert::appointment_end(rq)?;
            let change = who.stamp(change);
            self.book.end_appointment(&change, &end, now).await?;
            Ok(pb::EndAppointmentResponse {})
        })
        .await
    }

    async fn revoke_delegation(
        &self,
        req: Request<pb::RevokeDelegationRequest>,
    ) -> Result<Response<pb::RevokeDelegationResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::RevokeDelegation, &req, move |who| async move {
            let (change, revocation) = convert::delegation_revocation(rq)?;
            let change = who.stamp(change);
            self.book
                .revoke_delegation(&change, &revocation, now)
                .await?;
            Ok(pb::RevokeDelegationResponse {})
        })
        .await
    }

    async fn update_organisation(
        &self,
        req: Request<pb::UpdateOrganisationRequest>,
    ) -> Result<Response<pb::UpdateOrganisationResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::UpdateOrganisation, &req, move |who| async move {
            let (change, update) = convert::organisation_update(rq)?;
            let change = who.stamp(change);
            self.book.update_organisation(&change, &update, now).await?;
            Ok(pb::UpdateOrganisationResponse {})
        })
        .await
    }

    async fn update_person(
        &self,
        req: Request<pb::UpdatePersonRequest>,
    ) -> Result<Response<pb::UpdatePersonResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::UpdatePerson, &req, move |who| async move {
            let (change, update) = convert::person_update(rq)?;
            let change = who.stamp(change);
            self.book.update_person(&change, &update, now).await?;
            Ok(pb::UpdatePersonResponse {})
        })
        .await
    }

    async fn authorize(
        &self,
        req: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::Authorize, &req, move |_who| async move {
            let d = self.store.authorize(rq, now).await?;
            let rules: Vec<&str> = d.refusals.iter().map(|r| r.rule.as_str()).collect();
            self.metrics.record_decision("Authorize", &rules);
            Ok(pb::AuthorizeResponse {
                allowed: d.refusals.is_empty(),
                refusals: refusals(d.refusals),
                holder_name: d.holder_name,
                title: d.title,
                on_behalf_of: d.on_behalf_of,
            })
        })
        .await
    }

    async fn check_authority(
        &self,
        req: Request<pb::CheckAuthorityRequest>,
    ) -> Result<Response<pb::CheckAuthorityResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CheckAuthority, &req, move |_who| async move {
            let c = self.store.check_authority(rq, now).await?;
            let rules: Vec<&str> = c.refusals.iter().map(|r| r.rule.as_str()).collect();
            self.metrics.record_decision("CheckAuthority", &rules);
            Ok(pb::CheckAuthorityResponse {
                authorised: c.refusals.is_empty(),
                refusals: refusals(c.refusals),
                kind: c.kind,
                holder_name: c.holder_name,
                title: c.title,
                organisation_name: c.organisation_name,
                status: c.status,
                organisation_id: c.organisation_id,
            })
        })
        .await
    }

    async fn check_jurisdiction(
        &self,
        req: Request<pb::CheckJurisdictionRequest>,
    ) -> Result<Response<pb::CheckJurisdictionResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::CheckJurisdiction, &req, move |_who| async move {
            let answer = crate::jurisdiction::check(self.store.db(), rq).await?;
            self.metrics.record_decision(
                "CheckJurisdiction",
                if answer.managed { &["A4"] } else { &[] },
            );
            Ok(answer)
        })
        .await
    }

    async fn check_seal(
        &self,
        req: Request<pb::CheckSealRequest>,
    ) -> Result<Response<pb::CheckSealResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::CheckSeal, &req, move |_who| async move {
            let c = self.store.check_seal(rq, now).await?;
            let rules: Vec<&str> = c.refusals.iter().map(|r| r.rule.as_str()).collect();
            self.metrics.record_decision("CheckSeal", &rules);
            Ok(pb::CheckSealResponse {
                allowed: c.refusals.is_empty(),
                refusals: refusals(c.refusals),
                entry: c.entry.map(convert::register_entry),
            })
        })
        .await
    }

    async fn get_certificate(
        &self,
        req: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::GetCertificateResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::GetCertificate, &req, move |_who| async move {
            let c = match &rq.by {
                Some(pb::get_certificate_request::By::Fingerprint(fp)) => {
                    self.book.get_certificate_by_fingerprint(fp, now).await?
                }
                Some(pb::get_certificate_request::By::IssuerSerial(is)) => {
                    self.book
                        .get_certificate_by_issuer_serial(&is.issuer, &is.serial, now)
                        .await?
                }
                None => {
                    return Err(crate::Error::field(
                        "by",
                        "required: fingerprint or issuer_serial",
                    ));
                }
            };
            Ok(pb::GetCertificateResponse {
                certificate: Some(convert::certificate(c)),
            })
        })
        .await
    }

    async fn find_certificates(
        &self,
        req: Request<pb::FindCertificatesRequest>,
    ) -> Result<Response<pb::FindCertificatesResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::FindCertificates, &req, move |_who| async move {
            let lookup = convert::certificate_lookup(rq)?;
            let der = self.book.find_certificates(&lookup).await?;
            Ok(pb::FindCertificatesResponse { der })
        })
        .await
    }

    async fn record_document_status(
        &self,
        req: Request<pb::RecordDocumentStatusRequest>,
    ) -> Result<Response<pb::RecordDocumentStatusResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::RecordDocumentStatus, &req, move |who| async move {
            let (change, new) = convert::new_document_status(rq)?;
            let change = who.stamp(change);
            let status = self.book.record_document_status(&change, &new, now).await?;
            Ok(pb::RecordDocumentStatusResponse {
                status: Some(convert::document_status(status)),
            })
        })
        .await
    }

    async fn list_document_status(
        &self,
        req: Request<pb::ListDocumentStatusRequest>,
    ) -> Result<Response<pb::ListDocumentStatusResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListDocumentStatus, &req, move |_who| async move {
            let organisation = need("organisation_id", &rq.organisation_id)?;
            let entry = need("register_entry_id", &rq.register_entry_id)?;
            let statuses = self
                .book
                .list_document_status(&organisation, &entry)
                .await?;
            Ok(pb::ListDocumentStatusResponse {
                statuses: statuses.into_iter().map(convert::document_status).collect(),
            })
        })
        .await
    }

    async fn list_unconfirmed(
        &self,
        req: Request<pb::ListUnconfirmedRequest>,
    ) -> Result<Response<pb::ListUnconfirmedResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListUnconfirmed, &req, move |_who| async move {
            let organisation = need("organisation_id", &rq.organisation_id)?;
            let documents = self.book.list_unconfirmed(&organisation).await?;
            Ok(pb::ListUnconfirmedResponse {
                documents: documents.into_iter().map(convert::unconfirmed).collect(),
            })
        })
        .await
    }

    async fn list_expiring_certificates(
        &self,
        req: Request<pb::ListExpiringCertificatesRequest>,
    ) -> Result<Response<pb::ListExpiringCertificatesResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(
            Call::ListExpiringCertificates,
            &req,
            move |_who| async move {
                let r = rq;
                if r.within_days == 0 || r.within_days > 3660 {
                    return Err(crate::Error::field("within_days", "between 1 and 3660"));
                }
                let at = r.at.as_ref().map(|t| t.seconds).unwrap_or(now);
                let certificates = self.book.expiring(r.within_days, at).await?;
                Ok(pb::ListExpiringCertificatesResponse {
                    certificates: certificates.into_iter().map(convert::certificate).collect(),
                })
            },
        )
        .await
    }

    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListEvents, &req, move |_who| async move {
            let r = rq;
            let events = self.book.events(r.after_seq, r.limit).await?;
            Ok(pb::ListEventsResponse {
                events: events.into_iter().map(convert::event).collect(),
            })
        })
        .await
    }

    async fn find_people(
        &self,
        req: Request<pb::FindPeopleRequest>,
    ) -> Result<Response<pb::FindPeopleResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::FindPeople, &req, move |_who| async move {
            let r = rq;
            let name = need("name", &r.name)?;
            let people = self.book.find_people(&name, &r.organisation_id).await?;
            Ok(pb::FindPeopleResponse {
                people: people.into_iter().map(convert::person_match).collect(),
            })
        })
        .await
    }

    async fn find_organisations(
        &self,
        req: Request<pb::FindOrganisationsRequest>,
    ) -> Result<Response<pb::FindOrganisationsResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::FindOrganisations, &req, move |_who| async move {
            let organisations = if !rq.id.trim().is_empty() {
                self.book.find_organisation_by_id(&rq.id).await?
            } else if rq.code.trim().is_empty() {
                let name = need("name", &rq.name)?;
                self.book.find_organisations(&name).await?
            } else {
                self.book.find_organisation_by_code(&rq.code).await?
            };
            Ok(pb::FindOrganisationsResponse {
                organisations: organisations
                    .into_iter()
                    .map(convert::organisation_match)
                    .collect(),
            })
        })
        .await
    }

    async fn report(
        &self,
        req: Request<pb::ReportRequest>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::Report, &req, move |_who| async move {
            let query = convert::report_query(rq)?;
            let report = self.book.report(&query).await?;
            Ok(pb::ReportResponse {
                rows: report.rows.into_iter().map(convert::report_row).collect(),
                signatures_counted: report.signatures_counted,
            })
        })
        .await
    }

    async fn record_usage(
        &self,
        req: Request<pb::RecordUsageRequest>,
    ) -> Result<Response<pb::RecordUsageResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::RecordUsage, &req, move |who| async move {
            let (change, batch) = convert::usage_batch(rq)?;
            let change = who.stamp(change);
            let recorded = self.book.record_usage(&change, &batch, self.now()).await?;
            Ok(convert::usage_recorded(recorded))
        })
        .await
    }

    async fn register_document(
        &self,
        req: Request<pb::RegisterDocumentRequest>,
    ) -> Result<Response<pb::RegisterDocumentResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::RegisterDocument, &req, move |who| async move {
            let (change, new) = convert::new_register_entry(rq)?;
            let change = who.stamp(change);
            let entry = self
                .book
                .register_document(&change, &new, self.now())
                .await?;
            Ok(pb::RegisterDocumentResponse {
                entry: Some(convert::register_entry(entry)),
            })
        })
        .await
    }

    async fn list_register(
        &self,
        req: Request<pb::ListRegisterRequest>,
    ) -> Result<Response<pb::ListRegisterResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListRegister, &req, move |_who| async move {
            let query = convert::register_query(rq)?;
            let entries = self.book.list_register(&query).await?;
            Ok(pb::ListRegisterResponse {
                entries: entries.into_iter().map(convert::register_entry).collect(),
            })
        })
        .await
    }

    async fn request_unlock(
        &self,
        req: Request<pb::RequestUnlockRequest>,
    ) -> Result<Response<pb::RequestUnlockResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::RequestUnlock, &req, move |who| async move {
            let (change, filing) = convert::unlock_filing(rq)?;
            let change = who.stamp(change);
            let request = self
                .book
                .request_unlock(&change, &filing, self.now())
                .await?;
            Ok(pb::RequestUnlockResponse {
                request: Some(convert::unlock_request(request)),
            })
        })
        .await
    }

    async fn resolve_unlock(
        &self,
        req: Request<pb::ResolveUnlockRequest>,
    ) -> Result<Response<pb::ResolveUnlockResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ResolveUnlock, &req, move |who| async move {
            let (change, resolution) = convert::unlock_resolution(rq)?;
            let change = who.stamp(change);
            let request = self
                .book
                .resolve_unlock(&change, &resolution, self.now())
                .await?;
            Ok(pb::ResolveUnlockResponse {
                request: Some(convert::unlock_request(request)),
            })
        })
        .await
    }

    async fn list_overdue_unlocks(
        &self,
        req: Request<pb::ListOverdueUnlocksRequest>,
    ) -> Result<Response<pb::ListOverdueUnlocksResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListOverdueUnlocks, &req, move |_who| async move {
            let at = convert::ts("now", &rq.now)?.unwrap_or(self.now());
            let requests = self.book.overdue_unlocks(at).await?;
            Ok(pb::ListOverdueUnlocksResponse {
                requests: requests.into_iter().map(convert::unlock_request).collect(),
            })
        })
        .await
    }

    async fn latest_unlock(
        &self,
        req: Request<pb::LatestUnlockRequest>,
    ) -> Result<Response<pb::LatestUnlockResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::LatestUnlock, &req, move |_who| async move {
            let fp = rq.fingerprint.trim().to_ascii_lowercase();
            if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(crate::error::Error::field(
                    "fingerprint",
                    "the certificate's SHA-256 in hex",
                ));
            }
            let request = self.book.latest_unlock(&fp).await?;
            Ok(pb::LatestUnlockResponse {
                request: request.map(convert::unlock_request),
            })
        })
        .await
    }

    async fn set_holidays(
        &self,
        req: Request<pb::SetHolidaysRequest>,
    ) -> Result<Response<pb::SetHolidaysResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::SetHolidays, &req, move |who| async move {
            let r = rq;
            let change = convert::change(&r.change)?;
            let change = who.stamp(change);
            let dates = self
                .book
                .set_holidays(&change, r.year, &r.dates, now)
                .await?;
            Ok(pb::SetHolidaysResponse { dates })
        })
        .await
    }

    async fn list_holidays(
        &self,
        req: Request<pb::ListHolidaysRequest>,
    ) -> Result<Response<pb::ListHolidaysResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListHolidays, &req, move |_who| async move {
            let dates = self.book.list_holidays(rq.year).await?;
            Ok(pb::ListHolidaysResponse { dates })
        })
        .await
    }

    async fn grant_role(
        &self,
        req: Request<pb::GrantRoleRequest>,
    ) -> Result<Response<pb::GrantRoleResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::GrantRole, &req, move |who| async move {
            let (change, new) = convert::new_role(rq)?;
            let change = who.stamp(change);
            let id = self.book.grant_role(&change, &new, now).await?;
            Ok(pb::GrantRoleResponse { id })
        })
        .await
    }

    async fn revoke_role(
        &self,
        req: Request<pb::RevokeRoleRequest>,
    ) -> Result<Response<pb::RevokeRoleResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::RevokeRole, &req, move |who| async move {
            let change = convert::change(&rq.change)?;
            let change = who.stamp(change);
            let id = need("id", &rq.id)?;
            self.book.revoke_role(&change, &id, now).await?;
            Ok(pb::RevokeRoleResponse {})
        })
        .await
    }

    async fn list_roles(
        &self,
        req: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListRoles, &req, move |_who| async move {
            let fp = match rq.fingerprint.trim() {
                "" => None,
                f => Some(crate::cert::normalise_fingerprint(f, "fingerprint")?),
            };
            let roles = self.book.list_roles(fp.as_deref()).await?;
            Ok(pb::ListRolesResponse {
                roles: roles.into_iter().map(convert::role_grant).collect(),
            })
        })
        .await
    }

    async fn record_audit_anchor(
        &self,
        req: Request<pb::RecordAuditAnchorRequest>,
    ) -> Result<Response<pb::RecordAuditAnchorResponse>, Status> {
        let now = self.now();
        let rq = req.get_ref();
        self.call(Call::RecordAuditAnchor, &req, move |who| async move {
            let (change, anchor) = convert::new_audit_anchor(rq)?;
            let change = who.stamp(change);
            let duplicate = self.book.record_audit_anchor(&change, &anchor, now).await?;
            Ok(pb::RecordAuditAnchorResponse { duplicate })
        })
        .await
    }

    async fn get_latest_audit_anchor(
        &self,
        req: Request<pb::GetLatestAuditAnchorRequest>,
    ) -> Result<Response<pb::GetLatestAuditAnchorResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::GetLatestAuditAnchor, &req, move |_who| async move {
            let log_id = crate::book::log_id("log_id", &rq.log_id)?;
            let anchor = self.book.latest_audit_anchor(&log_id).await?;
            Ok(pb::GetLatestAuditAnchorResponse {
                anchor: anchor.map(convert::audit_anchor),
            })
        })
        .await
    }

    async fn list_audit_anchors(
        &self,
        req: Request<pb::ListAuditAnchorsRequest>,
    ) -> Result<Response<pb::ListAuditAnchorsResponse>, Status> {
        let rq = req.get_ref();
        self.call(Call::ListAuditAnchors, &req, move |_who| async move {
            let log_id = crate::book::log_id("log_id", &rq.log_id)?;
            let after = i64::try_from(rq.after_sequence).unwrap_or(i64::MAX);
            let anchors = self.book.audit_anchors(&log_id, after, rq.limit).await?;
            Ok(pb::ListAuditAnchorsResponse {
                anchors: anchors.into_iter().map(convert::audit_anchor).collect(),
            })
        })
        .await
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        self.call(Call::WhoAmI, &req, move |who| async move {
            Ok(pb::WhoAmIResponse {
                fingerprint: who.caller.fingerprint().to_owned(),
                subject: who.caller.subject(),
                roles: who.roles.names().into_iter().map(str::to_owned).collect(),
            })
        })
        .await
    }
}
