// Neo4j 5 dialect (also spoken by ArcadeDB's Bolt plugin): constraints, indexes, k-hop.

// name: create_key_constraint
CREATE CONSTRAINT {{index}} IF NOT EXISTS FOR (n:{{label}}) REQUIRE n.id IS UNIQUE

// name: create_node_run_index
CREATE INDEX {{index}} IF NOT EXISTS FOR (n:{{label}}) ON (n.run_id)

// name: create_rel_run_index
CREATE INDEX {{index}} IF NOT EXISTS FOR ()-[e:{{rel}}]-() ON (e.run_id)

// name: khop_ids
MATCH (s:{{label}})-[*1..{{hops}}]-(n)
WHERE s.id IN $ids
RETURN DISTINCT labels(n)[0] AS label, n.id AS id
