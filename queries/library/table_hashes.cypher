// name: table_hashes
// description: The content hash of each table file an ingest loaded, with the run that loaded it (loading the same file again is skipped; `mokg ingest --force` compares the rows anyway).
// dialects: neo4j, embedded
MATCH (h:TableHash)
RETURN h.target AS target, h.sha256 AS sha256, h.run_id AS run_id
