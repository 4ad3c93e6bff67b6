// name: relation_counts
// description: How many edges each relation type has, with their mean confidence.
// dialects: neo4j
MATCH ()-[e]->()
RETURN type(e) AS relation, count(*) AS count, avg(e.confidence) AS mean_confidence
ORDER BY count DESC, relation
