-- Where a connector's identity comes from: `none`, `stored` or `ambient`.
-- NULL (rows written by an earlier release, which cannot create ambient
-- connectors) reads as `stored` when the connector has secrets, else `none`.
--
-- This migration first landed as 2026-12-01-000000, the version the file
-- ledger's migration has too; diesel applied only one of the two, so fresh
-- databases had no credential_source. It has its own version now, and adds
-- the column only where it is missing (databases that applied it then).
ALTER TABLE sluice.connectors ADD COLUMN IF NOT EXISTS credential_source text
    CHECK (credential_source IN ('none', 'stored', 'ambient'));
