ALTER TABLE memory_chunks DROP COLUMN document_text;
