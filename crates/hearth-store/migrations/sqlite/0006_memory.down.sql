DROP INDEX memory_deletions_by_sequence;
DROP TABLE memory_deletions;
DROP INDEX memory_chunks_by_sequence;
DROP TABLE memory_chunks;
DROP INDEX memory_collections_by_tenant_name;
DROP TABLE memory_collections;
