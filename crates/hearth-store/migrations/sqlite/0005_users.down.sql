DROP INDEX usage_records_by_user_time;
ALTER TABLE usage_records DROP COLUMN user_id;
ALTER TABLE api_keys DROP COLUMN user_id;
DROP TABLE users;
