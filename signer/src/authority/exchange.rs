//! What the exchange flow asks the registry: register entries by number and symbol, and the
//! documents' status history (N6, W4).

use kyso_proto::registry::v1 as reg;
use tonic::Code;

use super::Registry;
use crate::error::{Error, Result};

/// A registry refusal of the flow's own request is the request's fault (bad input, a rule);
/// anything else is the registry being unavailable (fail closed, retry).
fn answer_error(rpc: &str, s: &tonic::Status) -> Error {
    match s.code() {
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => Error::InvalidField {
            field: "register",
            reason: format!("registry {rpc}: {}", s.message()),
        },
        _ => Error::RegistryUnavailable {
            reason: format!("{rpc}: {:?}: {}", s.code(), s.message()),
        },
    }
}

impl Registry {
    /// The entries of `organisation_id`'s register in `direction` with this number and
    /// symbol.
    pub async fn entries_by_number(
        &self,
        organisation_id: &str,
        direction: reg::Direction,
        number_and_symbol: &str,
    ) -> Result<Vec<reg::RegisterEntry>> {
        let mut request = tonic::Request::new(reg::ListRegisterRequest {
            organisation_id: organisation_id.to_owned(),
            direction: direction as i32,
            number_and_symbol: number_and_symbol.to_owned(),
            ..Default::default()
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        client
            .list_register(request)
            .await
            .map(|r| r.into_inner().entries)
            .map_err(|s| answer_error("ListRegister", &s))
    }

    /// `RecordDocumentStatus` (W4): an entry of a document's status history.
    pub async fn record_document_status(
        &self,
        req: reg::RecordDocumentStatusRequest,
    ) -> Result<reg::DocumentStatus> {
        let mut request = tonic::Request::new(req);
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        client
            .record_document_status(request)
            .await
            .map_err(|s| answer_error("RecordDocumentStatus", &s))?
            .into_inner()
            .status
            .ok_or_else(|| Error::RegistryUnavailable {
                reason: "RecordDocumentStatus answered without the status".into(),
            })
    }

    /// `ListDocumentStatus` (W4): a document's status history, oldest first.
    pub async fn document_statuses(
        &self,
        organisation_id: &str,
        register_entry_id: &str,
    ) -> Result<Vec<reg::DocumentStatus>> {
        let mut request = tonic::Request::new(reg::ListDocumentStatusRequest {
            organisation_id: organisation_id.to_owned(),
            register_entry_id: register_entry_id.to_owned(),
        });
        request.set_timeout(self.timeout);
        let mut client = self.client.clone();
        client
            .list_document_status(request)
            .await
            .map(|r| r.into_inner().statuses)
            .map_err(|s| answer_error("ListDocumentStatus", &s))
    }
}
