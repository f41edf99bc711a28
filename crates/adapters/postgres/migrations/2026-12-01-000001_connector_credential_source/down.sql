ALTER TABLE sluice.connectors DROP COLUMN credential_source;
