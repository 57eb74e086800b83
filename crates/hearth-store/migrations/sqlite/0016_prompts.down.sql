ALTER TABLE usage_records DROP COLUMN prompt_version;
ALTER TABLE usage_records DROP COLUMN prompt_id;
DROP TABLE prompt_labels;
DROP TABLE prompt_versions;
