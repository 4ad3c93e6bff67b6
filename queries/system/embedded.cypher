// LadybugDB dialect: DDL and the few reads whose syntax differs from Neo4j's.

// name: create_node_table
CREATE NODE TABLE IF NOT EXISTS {{label}}({{columns}}, PRIMARY KEY(id))

// name: create_rel_table
CREATE REL TABLE IF NOT EXISTS {{rel}}({{pairs}}, {{columns}})

// name: khop_ids
MATCH (s:{{label}})-[*1..{{hops}}]-(n)
WHERE s.id IN $ids
RETURN DISTINCT label(n) AS label, n.id AS id

// name: copy_nodes
COPY {{label}} FROM frame

// name: copy_edges
COPY {{rel}} FROM frame (from='{{head}}', to='{{tail}}')

// name: fetch_nodes_keyed
UNWIND $ids AS i
MATCH (n:{{label}} {id: i})
RETURN {{columns}}

// name: fetch_edges_keyed
UNWIND $rows AS r
MATCH (a:{{head}} {id: r.head})-[e:{{rel}}]->(b:{{tail}} {id: r.tail})
RETURN a.id AS head, b.id AS tail, {{columns}}
