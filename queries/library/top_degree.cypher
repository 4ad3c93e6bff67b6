// name: top_degree
// description: The best-connected entities of one label (edges in either direction).
// param: label: label = Intent
// param: limit: int = 20
// dialects: neo4j, embedded
MATCH (n:{{label}})-[e]-()
RETURN n.id AS id, n.name AS name, count(e) AS degree
ORDER BY degree DESC, id
LIMIT $limit
