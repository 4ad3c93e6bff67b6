// Internal write/read templates shared by both backends. Not user queries (see queries/library/).
// {{name}} placeholders are filled only with names the schema has validated (queries/templates.py);
// every value travels as a $parameter.

// A row without a `source` gets the run id when it is created; an update keeps the stored one.

// name: upsert_nodes
UNWIND $rows AS r
MERGE (n:{{label}} {id: r.id})
ON CREATE SET n.run_id = $run_id, n.created_at = $now, n.source = $run_id
SET {{set_clause}}

// name: upsert_edges
UNWIND $rows AS r
MATCH (a:{{head}} {id: r.head}), (b:{{tail}} {id: r.tail})
MERGE (a)-[e:{{rel}}]->(b)
ON CREATE SET e.run_id = $run_id, e.created_at = $now, e.source = $run_id
SET {{set_clause}}

// name: existing_ids
MATCH (n:{{label}})
WHERE n.id IN $ids
RETURN n.id AS id

// name: all_ids
MATCH (n:{{label}})
RETURN n.id AS id

// name: fetch_nodes
MATCH (n:{{label}})
RETURN {{columns}}

// name: fetch_nodes_by_id
MATCH (n:{{label}})
WHERE n.id IN $ids
RETURN {{columns}}

// name: fetch_edges
MATCH (a:{{head}})-[e:{{rel}}]->(b:{{tail}})
RETURN a.id AS head, b.id AS tail, {{columns}}

// name: count_nodes
MATCH (n:{{label}})
RETURN count(n) AS c

// name: count_edges
MATCH (:{{head}})-[e:{{rel}}]->(:{{tail}})
RETURN count(e) AS c

// name: delete_run_edges
MATCH (:{{head}})-[e:{{rel}}]->(:{{tail}})
WHERE e.run_id = $run_id
DELETE e

// The edges a run removes (graph/removal.py: their before-images are written first).
// name: delete_edges_keyed
UNWIND $rows AS r
MATCH (a:{{head}} {id: r.head})-[e:{{rel}}]->(b:{{tail}} {id: r.tail})
DELETE e

// name: count_run_edges
MATCH (:{{head}})-[e:{{rel}}]->(:{{tail}})
WHERE e.run_id = $run_id
RETURN count(e) AS c

// name: delete_run_nodes
MATCH (n:{{label}})
WHERE n.run_id = $run_id AND NOT EXISTS { MATCH (n)--() }
DELETE n

// name: count_run_nodes
MATCH (n:{{label}})
WHERE n.run_id = $run_id
RETURN count(n) AS c

// name: upsert_run
MERGE (r:Run {id: $id})
ON CREATE SET r.seq = $seq, r.started_at = $now, r.created_at = $now, r.run_id = $id
SET r.kind = $kind, r.status = $status, r.note = $note, r.source = $source, r.host = $host,
    r.pid = $pid

// A process that writes to a run (a resumed job) becomes its writer.
// name: claim_run
MATCH (r:Run {id: $id})
SET r.host = $host, r.pid = $pid

// name: finish_run
MATCH (r:Run {id: $id})
SET r.status = $status, r.finished_at = $now

// name: max_run_seq
MATCH (r:Run)
RETURN max(r.seq) AS seq

// name: latest_run
MATCH (r:Run)
WHERE r.status = 'done'
RETURN r.id AS id, r.seq AS seq
ORDER BY r.seq DESC
LIMIT 1

// name: list_runs
MATCH (r:Run)
RETURN r.id AS id, r.seq AS seq, r.kind AS kind, r.status AS status, r.note AS note,
       r.started_at AS started_at, r.finished_at AS finished_at, r.host AS host, r.pid AS pid
ORDER BY r.seq

// name: delete_run_node
MATCH (r:Run {id: $id})
DELETE r

// An ad-hoc write's run claims what the statement created (rows without a run).
// name: stamp_nodes
MATCH (n:{{label}})
WHERE n.run_id IS NULL
SET n.run_id = $run_id, n.source = coalesce(n.source, $run_id), n.created_at = coalesce(n.created_at, $now)

// name: stamp_edges
MATCH (:{{head}})-[e:{{rel}}]->(:{{tail}})
WHERE e.run_id IS NULL
SET e.run_id = $run_id, e.source = coalesce(e.source, $run_id), e.created_at = coalesce(e.created_at, $now)

// name: run_changes
MATCH (c:Change)
WHERE c.run_id = $run_id
RETURN c.id AS id, c.target AS target, c.key AS key, c.before AS before, c.after AS after

// name: delete_run_changes
MATCH (c:Change)
WHERE c.run_id = $run_id
DELETE c

// Deleting any run can take away or put back rows of a table an ingest loaded: every table's
// content hash goes with it (the next ingest compares the rows again; loaders/hashes.py).
// name: forget_table_hashes
MATCH (h:TableHash)
DELETE h

// Relation types declared in the store (graph/declared.py): a run's declarations, and removing one.
// name: run_declarations
MATCH (d:DeclaredRelation)
WHERE d.run_id = $run_id
RETURN d.id AS id, d.relation AS relation, d.from_label AS from_label, d.to_label AS to_label

// name: declared_relations
MATCH (d:DeclaredRelation)
RETURN DISTINCT d.relation AS relation

// name: delete_declaration
MATCH (d:DeclaredRelation {id: $id})
DELETE d
