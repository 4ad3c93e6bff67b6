// name: label_counts
// description: How many nodes each label has.
// dialects: neo4j
MATCH (n)
RETURN labels(n)[0] AS label, count(*) AS count
ORDER BY count DESC, label
