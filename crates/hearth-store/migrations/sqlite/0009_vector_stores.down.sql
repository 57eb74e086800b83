DROP INDEX vector_store_files_by_status;
DROP INDEX vector_store_files_by_batch;
DROP INDEX vector_store_files_by_time;
DROP TABLE vector_store_files;
DROP TABLE vector_store_file_batches;
DROP INDEX vector_stores_by_tenant_time;
DROP TABLE vector_stores;
