// name: path_between
// description: One shortest path (any direction) between two entities, as ids and labels.
// param: from_label: label
// param: from_id: string
// param: to_label: label
// param: to_id: string
// param: hops: hops = 4
// dialects: neo4j
MATCH (a:{{from_label}} {id: $from_id}), (b:{{to_label}} {id: $to_id})
MATCH p = shortestPath((a)-[*..{{hops}}]-(b))
RETURN [n IN nodes(p) | n.id] AS ids, [n IN nodes(p) | labels(n)[0]] AS labels,
       [r IN relationships(p) | type(r)] AS relations, length(p) AS length
