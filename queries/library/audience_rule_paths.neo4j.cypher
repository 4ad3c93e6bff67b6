// name: audience_rule_paths
// description: The paths that put a user in a campaign's rule audience (see audience_rule), strongest first.
// param: campaign_id: string =
// param: user_id: string =
// param: hops: hops = 4
// param: limit: int = 10
// param: walk: rel_types = NEEDS|SERVES|CO_OCCURS_WITH|PRECEDES|SUBCATEGORY_OF|BELONGS_TO|CLICKED
// dialects: neo4j
MATCH (c:Campaign {id: $campaign_id})-[t:TARGETS]->(i:Intent)
MATCH p = (i)-[:{{walk}}|INTERACTED|SEARCHED*1..{{hops}}]-(u:User {id: $user_id})
RETURN [x IN nodes(p) | x.id] AS ids, [x IN nodes(p) | labels(x)[0]] AS labels,
       [x IN relationships(p) | type(x)] AS relations,
       t.confidence * reduce(w = 1.0, r IN relationships(p) | w * r.confidence) AS weight
ORDER BY weight DESC, size(ids)
LIMIT $limit
