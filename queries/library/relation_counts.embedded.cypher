// name: relation_counts
// description: How many edges each relation type has, with their mean confidence.
// dialects: embedded
MATCH ()-[e]->()
RETURN label(e) AS relation, count(*) AS count, avg(e.confidence) AS mean_confidence
ORDER BY count DESC, relation
