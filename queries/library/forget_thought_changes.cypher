// name: forget_thought_changes
// description: Delete the before-images of the given thoughts and their MENTIONS edges (Change rows keyed by JSON ids or [thought, entity] pairs), so no copy of a forgotten thought stays behind.
// param: keys: list
// dialects: neo4j, embedded
MATCH (c:Change)
WHERE (c.target = 'Thought' OR c.target STARTS WITH 'Thought-MENTIONS-') AND c.key IN $keys
DETACH DELETE c
