// name: k_hop_neighbourhood
// description: Entities within `hops` hops of one entity (any direction), nearest first.
// param: label: label = Intent
// param: id: string
// param: hops: hops = 2
// param: limit: int = 100
// dialects: neo4j
MATCH p = (s:{{label}} {id: $id})-[*1..{{hops}}]-(n)
WHERE n <> s
WITH n, min(length(p)) AS distance
RETURN labels(n)[0] AS label, n.id AS id, n.name AS name, distance
ORDER BY distance, label, id
LIMIT $limit
