// name: fact_sources
// description: Where a fact came from: the edge's confidence, source and run, and every document chunk that states it (the passage and the cited spans, [chunk, start, end] in the chunk's text).
// param: head_label: label
// param: head_id: string
// param: rel_type: rel_type = NEEDS
// param: tail_id: string
// dialects: neo4j, embedded
MATCH (h:{{head_label}} {id: $head_id})-[e:{{rel_type}}]->(t {id: $tail_id})
OPTIONAL MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk)
WHERE e.spans CONTAINS ('"' + c.id + '"')
RETURN h.name AS head, t.name AS tail, e.confidence AS confidence, e.source AS source,
       e.run_id AS run_id, d.id AS document, d.name AS title, c.id AS chunk, c.text AS passage,
       e.spans AS spans
ORDER BY document, chunk
