-- Organisation codes (mã định danh, Decision 20/2020/QĐ-TTg: `NNN.NN.NN.Xnn`) of the
-- organisations this registry manages; CheckJurisdiction (A4) treats a signer whose sender
-- code is one of them, or under one of them, as managed here. NULL: none given. Unique, so a
-- code names one organisation.
ALTER TABLE organisations ADD COLUMN code TEXT;
CREATE UNIQUE INDEX organisations_code ON organisations (code);

-- W3, A3, A4: the authority outcome of each signature of an incoming document (allowed,
-- outside this registry: not checked, refused with the rule), as JSON; '' for entries made
-- before, and for outgoing ones.
ALTER TABLE document_register ADD COLUMN signatures TEXT NOT NULL DEFAULT '';
