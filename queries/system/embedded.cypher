// LadybugDB dialect: DDL and the few reads whose syntax differs from Neo4j's.

// name: create_node_table
CREATE NODE TABLE IF NOT EXISTS {{label}}({{columns}}, PRIMARY KEY(id))

// name: create_rel_table
CREATE REL TABLE IF NOT EXISTS {{rel}}({{pairs}}, {{columns}})

// name: add_column
ALTER TABLE {{table}} ADD IF NOT EXISTS {{column}} {{type}}

// name: add_rel_pair
ALTER TABLE {{rel}} ADD IF NOT EXISTS FROM {{head}} TO {{tail}}

// name: khop_ids
MATCH (s:{{label}})-[*1..{{hops}}]-(n)
WHERE s.id IN $ids
RETURN DISTINCT label(n) AS label, n.id AS id

// name: copy_nodes
COPY {{label}} FROM frame

// name: copy_edges
COPY {{rel}} FROM frame (from='{{head}}', to='{{tail}}')

// name: fetch_nodes_keyed
LOAD FROM frame
MATCH (n:{{label}} {id: c_id})
RETURN {{columns}}

// name: existing_ids_keyed
LOAD FROM frame
MATCH (n:{{label}} {id: c_id})
RETURN n.id AS id

// name: fetch_edges_keyed
LOAD FROM frame
MATCH (a:{{head}} {id: c_head})-[e:{{rel}}]->(b:{{tail}} {id: c_tail})
RETURN a.id AS head, b.id AS tail, {{columns}}

// name: update_nodes
LOAD FROM frame
MATCH (n:{{label}} {id: c_id})
SET {{set_clause}}

// name: update_edges
LOAD FROM frame
MATCH (a:{{head}} {id: c_head})-[e:{{rel}}]->(b:{{tail}} {id: c_tail})
SET {{set_clause}}

// The token of the last committed write transaction, checked after a failed checkpoint.
// name: mark_commit
MERGE (c:Change {id: '~commit'})
SET c.after = $token

// name: commit_token
MATCH (c:Change {id: '~commit'})
RETURN c.after AS token

// Rows created by a logged statement rather than COPY (the before-images and small inserts).
// name: create_nodes
LOAD FROM frame
CREATE (:{{label}} {{{properties}}})

// name: create_edges
LOAD FROM frame
MATCH (h:{{head}} {id: c_head}), (t:{{tail}} {id: c_tail})
CREATE (h)-[:{{rel}} {{{properties}}}]->(t)

// name: count_created_nodes
MATCH (n:{{label}})
WHERE n.run_id = $run_id AND n.created_at = $now
RETURN count(n) AS c

// name: count_created_edges
MATCH (:{{head}})-[e:{{rel}}]->(:{{tail}})
WHERE e.run_id = $run_id AND e.created_at = $now
RETURN count(e) AS c

// A declared relation type that no declaration holds any more (graph/declared.py).
// name: drop_rel_table
DROP TABLE {{rel}}

// name: drop_rel_pair
ALTER TABLE {{rel}} DROP FROM {{head}} TO {{tail}}
