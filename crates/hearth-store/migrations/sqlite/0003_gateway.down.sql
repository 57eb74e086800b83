DROP INDEX audit_log_by_tenant_time;
ALTER TABLE audit_log DROP COLUMN tenant_id;
DROP TABLE gateway_revision;
DROP INDEX usage_records_by_key_time;
DROP INDEX usage_records_by_tenant_time;
DROP TABLE usage_records;
DROP INDEX api_keys_by_tenant;
DROP TABLE api_keys;
DROP TABLE tenants;
