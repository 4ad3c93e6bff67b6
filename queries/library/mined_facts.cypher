// name: mined_facts
// description: The facts PAIR mined for one relation type and endpoint pair (edges with provenance), in a confidence band, optionally of one run; least confident first, for review.
// param: head_label: label = Intent
// param: rel_type: rel_type = NEEDS
// param: tail_label: label = Category
// param: min_confidence: float = 0.0
// param: max_confidence: float = 1.0
// param: run_id: string = ""
// dialects: neo4j, embedded
MATCH (h:{{head_label}})-[e:{{rel_type}}]->(t:{{tail_label}})
WHERE e.evidence IS NOT NULL AND e.confidence >= $min_confidence AND e.confidence <= $max_confidence
  AND ($run_id = '' OR e.run_id = $run_id)
RETURN h.id AS head, h.name AS head_name, t.id AS tail, t.name AS tail_name,
       e.confidence AS confidence, e.vote AS vote, e.relatedness AS relatedness,
       e.evidence AS evidence, e.spans AS spans, e.source AS source, e.run_id AS run_id
ORDER BY confidence, head, tail
