// name: users_near_intent
// description: Users reachable from an intent within `hops` hops, ranked by the number of paths.
// param: intent_id: string
// param: hops: hops = 2
// param: limit: int = 100
// dialects: neo4j, embedded
MATCH (i:Intent {id: $intent_id})-[*1..{{hops}}]-(u:User)
RETURN u.id AS user, u.name AS name, count(*) AS paths
ORDER BY paths DESC, user
LIMIT $limit
