// name: forget_thought_changes
// description: Delete the before-images of the given thoughts (Change rows keyed by their JSON ids), so no copy of a forgotten thought stays behind.
// param: keys: list
// dialects: neo4j, embedded
MATCH (c:Change)
WHERE c.target = 'Thought' AND c.key IN $keys
DETACH DELETE c
