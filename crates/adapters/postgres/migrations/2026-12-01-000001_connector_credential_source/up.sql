-- Where a connector's identity comes from: `none`, `stored` or `ambient`.
-- NULL (rows written by an earlier release, which cannot create ambient
-- connectors) reads as `stored` when the connector has secrets, else `none`.
ALTER TABLE sluice.connectors ADD COLUMN credential_source text
    CHECK (credential_source IN ('none', 'stored', 'ambient'));
