// name: k_hop_neighbourhood
// description: Entities within `hops` hops of one entity (any direction), nearest first.
// param: label: label = Intent
// param: id: string
// param: hops: hops = 2
// param: limit: int = 100
// dialects: embedded
MATCH p = (s:{{label}} {id: $id})-[*1..{{hops}}]-(n)
WHERE n.id <> s.id OR label(n) <> label(s)
WITH n, min(length(p)) AS distance
RETURN label(n) AS label, n.id AS id, n.name AS name, distance
ORDER BY distance, label, id
LIMIT $limit
