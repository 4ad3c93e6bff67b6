// name: audience_rule
// description: Users within `hops` (2-5) hops of a campaign's intents: walks through the KG and the catalogue along `walk` (default NEEDS, SERVES, CO_OCCURS_WITH, PRECEDES, SUBCATEGORY_OF, BELONGS_TO, CLICKED; the rule targeter adds SAME_AS and the relation types a loaded KG declared), then one INTERACTED or SEARCHED step onto the user; per user and walk length, the walk count and the sum over walks of the product of edge confidences. Aggregated one hop at a time (walks are counted, never listed), so it stays fast on large graphs; sum the rows of a user over lengths.
// param: campaign_id: string =
// param: hops: int = 4
// param: walk: rel_types = NEEDS|SERVES|CO_OCCURS_WITH|PRECEDES|SUBCATEGORY_OF|BELONGS_TO|CLICKED
// dialects: neo4j, embedded
MATCH (c:Campaign {id: $campaign_id})-[t:TARGETS]->(i:Intent) WHERE $hops >= 2
MATCH (i)-[r1:{{walk}}]-(x1)
WITH x1, sum(t.confidence * r1.confidence) AS w1, count(*) AS n1
MATCH (x1)-[r:INTERACTED|SEARCHED]-(u:User)
RETURN u.id AS user, 2 AS length, sum(n1) AS paths, sum(w1 * r.confidence) AS score
UNION ALL
MATCH (c:Campaign {id: $campaign_id})-[t:TARGETS]->(i:Intent) WHERE $hops >= 3
MATCH (i)-[r1:{{walk}}]-(x1)
WITH x1, sum(t.confidence * r1.confidence) AS w1, count(*) AS n1
MATCH (x1)-[r2:{{walk}}]-(x2)
WITH x2, sum(w1 * r2.confidence) AS w2, sum(n1) AS n2
MATCH (x2)-[r:INTERACTED|SEARCHED]-(u:User)
RETURN u.id AS user, 3 AS length, sum(n2) AS paths, sum(w2 * r.confidence) AS score
UNION ALL
MATCH (c:Campaign {id: $campaign_id})-[t:TARGETS]->(i:Intent) WHERE $hops >= 4
MATCH (i)-[r1:{{walk}}]-(x1)
WITH x1, sum(t.confidence * r1.confidence) AS w1, count(*) AS n1
MATCH (x1)-[r2:{{walk}}]-(x2)
WITH x2, sum(w1 * r2.confidence) AS w2, sum(n1) AS n2
MATCH (x2)-[r3:{{walk}}]-(x3)
WITH x3, sum(w2 * r3.confidence) AS w3, sum(n2) AS n3
MATCH (x3)-[r:INTERACTED|SEARCHED]-(u:User)
RETURN u.id AS user, 4 AS length, sum(n3) AS paths, sum(w3 * r.confidence) AS score
UNION ALL
MATCH (c:Campaign {id: $campaign_id})-[t:TARGETS]->(i:Intent) WHERE $hops >= 5
MATCH (i)-[r1:{{walk}}]-(x1)
WITH x1, sum(t.confidence * r1.confidence) AS w1, count(*) AS n1
MATCH (x1)-[r2:{{walk}}]-(x2)
WITH x2, sum(w1 * r2.confidence) AS w2, sum(n1) AS n2
MATCH (x2)-[r3:{{walk}}]-(x3)
WITH x3, sum(w2 * r3.confidence) AS w3, sum(n2) AS n3
MATCH (x3)-[r4:{{walk}}]-(x4)
WITH x4, sum(w3 * r4.confidence) AS w4, sum(n3) AS n4
MATCH (x4)-[r:INTERACTED|SEARCHED]-(u:User)
RETURN u.id AS user, 5 AS length, sum(n4) AS paths, sum(w4 * r.confidence) AS score
