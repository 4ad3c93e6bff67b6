// name: path_between
// description: One shortest path (any direction) between two entities, as ids and labels.
// param: from_label: label
// param: from_id: string
// param: to_label: label
// param: to_id: string
// param: hops: hops = 4
// dialects: embedded
MATCH p = (a:{{from_label}} {id: $from_id})-[* SHORTEST 1..{{hops}}]-(b:{{to_label}} {id: $to_id})
RETURN list_transform(nodes(p), x -> x.id) AS ids, list_transform(nodes(p), x -> label(x)) AS labels,
       list_transform(rels(p), x -> label(x)) AS relations, length(p) AS length
LIMIT 1
