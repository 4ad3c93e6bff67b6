// name: node_edges
// description: The edges of one node, either direction (out: the node is the head), with each edge's run, source and confidence; `rels` narrows the relation types (none: all). (`neighbour_edges` reads several nodes at once.)
// param: label: label = Intent
// param: id: string = int_wedding_preparation
// param: rels: list = 
// param: limit: int = 1000
// dialects: embedded
MATCH (s:{{label}} {id: $id})-[e]-(n)
WHERE size($rels) = 0 OR label(e) IN $rels
RETURN s.id AS id, s.name AS name, struct_extract(e, '_SRC') = id(s) AS out, label(e) AS type, label(n) AS other_label,
       n.id AS other, n.name AS other_name, e.run_id AS run_id, e.source AS source,
       e.confidence AS confidence
LIMIT $limit
