// name: audience_rule_paths
// description: The paths that put a user in a campaign's rule audience (see audience_rule), strongest first.
// param: campaign_id: string =
// param: user_id: string =
// param: hops: hops = 4
// param: limit: int = 10
// param: walk: rel_types = NEEDS|SERVES|CO_OCCURS_WITH|PRECEDES|SUBCATEGORY_OF|BELONGS_TO|CLICKED
// dialects: embedded
MATCH (c:Campaign {id: $campaign_id})-[t:TARGETS]->(i:Intent)
MATCH p = (i)-[:{{walk}}|INTERACTED|SEARCHED*1..{{hops}}]-(u:User {id: $user_id})
RETURN list_transform(nodes(p), x -> x.id) AS ids, list_transform(nodes(p), x -> label(x)) AS labels,
       list_transform(rels(p), x -> label(x)) AS relations,
       t.confidence * list_product(list_transform(rels(p), r -> r.confidence)) AS weight
ORDER BY weight DESC, size(ids)
LIMIT $limit
