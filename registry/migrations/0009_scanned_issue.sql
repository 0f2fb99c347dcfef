-- D2, D3: where the competent person holds a valid personal certificate, the outgoing
-- document is issued in the electronic form with both signatures; the scanned paper form
-- (SCANNED_ISSUE) only for the document types the province allows it for. Default: not
-- allowed (0), so every existing type keeps the rule.
ALTER TABLE document_types ADD COLUMN scanned_issue_allowed BIGINT NOT NULL DEFAULT 0;

-- D5, P4: an attachment is sealed only with the number and symbol of a document of the
-- sealing organisation's outgoing register; the signer asks for it on every APPENDIX.
CREATE INDEX document_register_number_and_symbol ON document_register
    (organisation_id, number_and_symbol);
