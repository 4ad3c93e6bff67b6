// name: audience_rule
// description: Users within `hops` hops of a campaign's intents through the KG and the catalogue, scored by the sum over paths of the product of edge confidences.
// param: campaign_id: string =
// param: hops: hops = 4
// dialects: embedded
MATCH (c:Campaign {id: $campaign_id})-[t:TARGETS]->(i:Intent)
MATCH p = (i)-[:NEEDS|SERVES|CO_OCCURS_WITH|PRECEDES|SUBCATEGORY_OF|BELONGS_TO|INTERACTED|SEARCHED|CLICKED*1..{{hops}}]-(u:User)
WITH u, t.confidence * list_product(list_transform(rels(p), r -> r.confidence)) AS weight
RETURN u.id AS user, count(*) AS paths, sum(weight) AS score
ORDER BY score DESC, paths DESC, user
