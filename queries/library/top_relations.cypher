// name: top_relations
// description: The most confident facts of one relation type, with their provenance.
// param: rel_type: rel_type = NEEDS
// param: min_confidence: float = 0.0
// param: limit: int = 20
// dialects: neo4j, embedded
MATCH (a)-[e:{{rel_type}}]->(b)
WHERE e.confidence >= $min_confidence
RETURN a.id AS head, a.name AS head_name, b.id AS tail, b.name AS tail_name,
       e.confidence AS confidence, e.source AS source, e.run_id AS run_id
ORDER BY confidence DESC, head, tail
LIMIT $limit
