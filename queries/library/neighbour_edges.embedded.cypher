// name: neighbour_edges
// description: The edges of some nodes of one label, either direction (out: the node is the head), with each edge's run, source and confidence; `rels` narrows the relation types (none: all). (`node_edges` reads one node by its key, faster.)
// param: label: label = Intent
// param: ids: list = int_wedding_preparation
// param: rels: list = 
// param: limit: int = 1000
// dialects: embedded
MATCH (s:{{label}})-[e]-(n)
WHERE s.id IN $ids AND (size($rels) = 0 OR label(e) IN $rels)
RETURN s.id AS id, s.name AS name, struct_extract(e, '_SRC') = id(s) AS out, label(e) AS type, label(n) AS other_label,
       n.id AS other, n.name AS other_name, e.run_id AS run_id, e.source AS source,
       e.confidence AS confidence
LIMIT $limit
