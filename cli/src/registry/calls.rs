//! One unary call path for every JSON command: the request is a [`DynamicMessage`] of the
//! method's input type, read from JSON through the descriptor set `kyso-proto` builds; the
//! answer is decoded as a [`DynamicMessage`] of its output type. The bytes on the wire are
//! those of the generated client.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use prost_reflect::prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use serde_json::Value;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use crate::{CliError, read_file};

/// The service the commands call.
pub const SERVICE: &str = "kyso.registry.v1.Registry";

/// Every kyso message and service, from the descriptor set built with the protos.
pub fn pool() -> Result<&'static DescriptorPool, CliError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(kyso_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| CliError::Usage(format!("the built-in descriptor set: {e}")))
}

/// A method of the registry service by name (`CreateOrganisation`).
pub fn method(name: &str) -> Result<MethodDescriptor, CliError> {
    pool()?
        .get_service_by_name(SERVICE)
        .and_then(|s| s.methods().find(|m| m.name() == name))
        .ok_or_else(|| CliError::Usage(format!("{SERVICE} has no method {name}")))
}

/// A message type of the registry package by name (`Certificate`).
pub fn message_type(name: &str) -> Result<MessageDescriptor, CliError> {
    let full = format!("kyso.registry.v1.{name}");
    pool()?
        .get_message_by_name(&full)
        .ok_or_else(|| CliError::Usage(format!("no message type {full}")))
}

/// A generated (typed) message as a [`DynamicMessage`] of the type `desc`.
pub fn dynamic<M: Message>(desc: MessageDescriptor, m: &M) -> Result<DynamicMessage, CliError> {
    DynamicMessage::decode(desc, m.encode_to_vec().as_slice())
        .map_err(|e| CliError::Usage(format!("re-reading a message: {e}")))
}

/// The request JSON, from a file or (`-`) stdin.
pub fn read_json(path: &Path) -> Result<Value, CliError> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|source| CliError::File {
                path: "stdin".into(),
                source,
            })?;
        s
    } else {
        String::from_utf8(read_file(path)?)
            .map_err(|_| CliError::Usage(format!("{}: not UTF-8 JSON", path.display())))?
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the request is not JSON: {e}")))
}

/// Sends `request` to `method` and returns the answer.
pub async fn unary(
    channel: Channel,
    method: &MethodDescriptor,
    request: DynamicMessage,
) -> Result<DynamicMessage, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("Service was not ready: {e}")))?;
    let path = PathAndQuery::try_from(format!("/{SERVICE}/{}", method.name()))
        .map_err(|e| Status::internal(format!("method path: {e}")))?;
    let req = tonic::Request::new(request);
    let codec = DynamicCodec {
        output: method.output(),
    };
    Ok(grpc.unary(req, path, codec).await?.into_inner())
}

/// Encodes any [`DynamicMessage`]; decodes messages of one type.
#[derive(Debug, Clone)]
struct DynamicCodec {
    output: MessageDescriptor,
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.output.clone())
    }
}

#[derive(Debug)]
struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

#[derive(Debug)]
struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_registry_method_and_its_types_are_in_the_descriptor_set() {
        let service = pool().unwrap().get_service_by_name(SERVICE).unwrap();
        assert!(service.methods().len() >= 31);
        let m = method("ListExpiringCertificates").unwrap();
        assert_eq!(
            m.input().full_name(),
            "kyso.registry.v1.ListExpiringCertificatesRequest"
        );
        assert!(method("NoSuchCall").is_err());
        assert!(message_type("Certificate").is_ok());
    }
}
