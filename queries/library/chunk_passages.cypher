// name: chunk_passages
// description: The text of document chunks by id, with their document (the passages mined facts cite in their spans).
// param: chunk_ids: list
// dialects: neo4j, embedded
MATCH (c:Chunk)
WHERE c.id IN $chunk_ids
OPTIONAL MATCH (d:Document)-[:HAS_CHUNK]->(c)
RETURN c.id AS chunk, c.text AS passage, c.position AS position, d.id AS document, d.name AS title
ORDER BY chunk
