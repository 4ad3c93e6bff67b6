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

// name: stored_nodes
UNWIND $rows AS r
MATCH (n:{{label}} {id: r.id})
RETURN {{columns}}

// name: stored_edges
UNWIND $rows AS r
MATCH (a:{{head}} {id: r.head})-[e:{{rel}}]->(b:{{tail}} {id: r.tail})
RETURN a.id AS head, b.id AS tail, {{columns}}

// name: update_nodes
UNWIND $rows AS r
MATCH (n:{{label}} {id: r.id})
SET {{set_clause}}

// name: update_edges
UNWIND $rows AS r
MATCH (a:{{head}} {id: r.head})-[e:{{rel}}]->(b:{{tail}} {id: r.tail})
SET {{set_clause}}
