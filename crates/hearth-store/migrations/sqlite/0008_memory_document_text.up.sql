-- Long documents are split into chunks, each embedded and searched on its own. The first
-- chunk (index 0) of a document split in several keeps the whole text here, so a document
-- reads back exactly as it was stored; NULL when the chunk's own text is the whole document.
ALTER TABLE memory_chunks ADD COLUMN document_text TEXT;
