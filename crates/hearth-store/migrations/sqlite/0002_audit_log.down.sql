DROP INDEX audit_log_by_time;
DROP TABLE audit_log;
