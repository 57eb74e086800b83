DROP TABLE job_attempts;
DROP TABLE job_runs;
DROP TABLE jobs;
