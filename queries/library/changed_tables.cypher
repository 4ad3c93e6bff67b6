// name: changed_tables
// description: The tables each run changed rows of that another run had created (from the before-images the store keeps).
// dialects: neo4j, embedded
MATCH (c:Change)
RETURN DISTINCT c.target AS target, c.run_id AS run_id
