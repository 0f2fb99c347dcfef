//! The `kyso.registry.v1.Registry` gRPC service: requests converted to the book's domain
//! types and back (convert.rs), `Authorize` and `CheckAuthority` to the store, errors to
//! `Status` (error.rs), and the request and decision metrics.

use std::future::Future;
use std::time::Instant;

use kyso_proto::registry::v1 as pb;
use kyso_proto::registry::v1::registry_server::Registry;
use tonic::{Request, Response, Status};

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
}

impl std::fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryService").finish_non_exhaustive()
    }
}

impl RegistryService {
    /// A service over `store`.
    pub fn new(store: Store, metrics: Metrics, clock: Clock) -> Self {
        Self {
            book: store.book(),
            store,
            metrics,
            clock,
        }
    }

    fn now(&self) -> i64 {
        (self.clock)().unix_timestamp()
    }

    /// Runs one call: database time, request count and latency, error mapping.
    async fn call<T>(
        &self,
        method: &'static str,
        f: impl Future<Output = Result<T>>,
    ) -> Result<Response<T>, Status> {
        let started = Instant::now();
        let out = self.book.db().timed(method, f).await;
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
        self.call("CreateOrganisation", async {
            let (change, new) = convert::new_organisation(req.get_ref())?;
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
        self.call("SetOrganisationStatus", async {
            let (change, status) = convert::organisation_status_change(req.get_ref())?;
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
        self.call("CreatePerson", async {
            let (change, new) = convert::new_person(req.get_ref())?;
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
        self.call("CreateTitle", async {
            let (change, name) = convert::new_title(req.get_ref())?;
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
        self.call("CreateAppointment", async {
            let (change, new) = convert::new_appointment(req.get_ref())?;
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
        self.call("CreateDocumentType", async {
            let (change, new) = convert::new_document_type(req.get_ref())?;
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
        self.call("GrantAuthority", async {
            let (change, grants) = convert::grants(req.get_ref())?;
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
        self.call("RegisterCertificate", async {
            let (change, new) = convert::new_certificate(req.get_ref())?;
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
        self.call("ChangeCertificateStatus", async {
            let (change, status) = convert::status_change(req.get_ref())?;
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
        self.call("AssignCustodian", async {
            let (change, assignment) = convert::custodian_assignment(req.get_ref())?;
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
        self.call("CreateDelegation", async {
            let (change, new) = convert::new_delegation(req.get_ref())?;
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
        self.call("EndAppointment", async {
            let (change, end) = convert::appointment_end(req.get_ref())?;
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
        self.call("RevokeDelegation", async {
            let (change, revocation) = convert::delegation_revocation(req.get_ref())?;
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
        self.call("UpdateOrganisation", async {
            let (change, update) = convert::organisation_update(req.get_ref())?;
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
        self.call("UpdatePerson", async {
            let (change, update) = convert::person_update(req.get_ref())?;
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
        self.call("Authorize", async {
            let d = self.store.authorize(req.get_ref(), now).await?;
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
        self.call("CheckAuthority", async {
            let c = self.store.check_authority(req.get_ref(), now).await?;
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

    async fn get_certificate(
        &self,
        req: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::GetCertificateResponse>, Status> {
        let now = self.now();
        self.call("GetCertificate", async {
            let c = match &req.get_ref().by {
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

    async fn list_expiring_certificates(
        &self,
        req: Request<pb::ListExpiringCertificatesRequest>,
    ) -> Result<Response<pb::ListExpiringCertificatesResponse>, Status> {
        let now = self.now();
        self.call("ListExpiringCertificates", async {
            let r = req.get_ref();
            if r.within_days == 0 || r.within_days > 3660 {
                return Err(crate::Error::field("within_days", "between 1 and 3660"));
            }
            let at = r.at.as_ref().map(|t| t.seconds).unwrap_or(now);
            let certificates = self.book.expiring(r.within_days, at).await?;
            Ok(pb::ListExpiringCertificatesResponse {
                certificates: certificates.into_iter().map(convert::certificate).collect(),
            })
        })
        .await
    }

    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        self.call("ListEvents", async {
            let r = req.get_ref();
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
        self.call("FindPeople", async {
            let r = req.get_ref();
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
        self.call("FindOrganisations", async {
            let name = need("name", &req.get_ref().name)?;
            let organisations = self.book.find_organisations(&name).await?;
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
        self.call("Report", async {
            let query = convert::report_query(req.get_ref())?;
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
        self.call("RecordUsage", async {
            let (change, batch) = convert::usage_batch(req.get_ref())?;
            let recorded = self.book.record_usage(&change, &batch, self.now()).await?;
            Ok(convert::usage_recorded(recorded))
        })
        .await
    }

    async fn register_document(
        &self,
        req: Request<pb::RegisterDocumentRequest>,
    ) -> Result<Response<pb::RegisterDocumentResponse>, Status> {
        self.call("RegisterDocument", async {
            let (change, new) = convert::new_register_entry(req.get_ref())?;
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
        self.call("ListRegister", async {
            let query = convert::register_query(req.get_ref())?;
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
        self.call("RequestUnlock", async {
            let (change, filing) = convert::unlock_filing(req.get_ref())?;
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
        self.call("ResolveUnlock", async {
            let (change, resolution) = convert::unlock_resolution(req.get_ref())?;
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
        self.call("ListOverdueUnlocks", async {
            let at = convert::ts("now", &req.get_ref().now)?.unwrap_or(self.now());
            let requests = self.book.overdue_unlocks(at).await?;
            Ok(pb::ListOverdueUnlocksResponse {
                requests: requests.into_iter().map(convert::unlock_request).collect(),
            })
        })
        .await
    }

    async fn set_holidays(
        &self,
        req: Request<pb::SetHolidaysRequest>,
    ) -> Result<Response<pb::SetHolidaysResponse>, Status> {
        let now = self.now();
        self.call("SetHolidays", async {
            let r = req.get_ref();
            let change = convert::change(&r.change)?;
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
        self.call("ListHolidays", async {
            let dates = self.book.list_holidays(req.get_ref().year).await?;
            Ok(pb::ListHolidaysResponse { dates })
        })
        .await
    }
}
