// name: user_intents
// description: The intents a user has, most confident first.
// param: user_id: string
// param: min_confidence: float = 0.0
// dialects: neo4j, embedded
MATCH (u:User {id: $user_id})-[e:HAS_INTENT]->(i:Intent)
WHERE e.confidence >= $min_confidence
RETURN i.id AS intent, i.name AS name, e.confidence AS confidence, e.source AS source
ORDER BY confidence DESC, intent
