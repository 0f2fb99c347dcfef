//! The edXML envelope: model, reader, writer.
