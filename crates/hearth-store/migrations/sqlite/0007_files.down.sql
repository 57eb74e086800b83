DROP INDEX files_by_tenant_time;
DROP TABLE files;
