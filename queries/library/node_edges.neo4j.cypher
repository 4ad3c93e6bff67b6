// name: node_edges
// description: The edges of one node, either direction (out: the node is the head), with each edge's run, source and confidence; `rels` narrows the relation types (none: all). (`neighbour_edges` reads several nodes at once.)
// param: label: label = Intent
// param: id: string = int_wedding_preparation
// param: rels: list = 
// param: limit: int = 1000
// dialects: neo4j
MATCH (s:{{label}} {id: $id})-[e]-(n)
WHERE size($rels) = 0 OR type(e) IN $rels
RETURN s.id AS id, s.name AS name, startNode(e) = s AS out, type(e) AS type, labels(n)[0] AS other_label,
       n.id AS other, n.name AS other_name, e.run_id AS run_id, e.source AS source,
       e.confidence AS confidence
LIMIT $limit
