// name: run_counts
// description: How many nodes of each label and edges of each relation type every run created.
// dialects: embedded
MATCH (n)
RETURN n.run_id AS run_id, 'node' AS kind, label(n) AS name, count(*) AS count
UNION ALL
MATCH ()-[e]->()
RETURN e.run_id AS run_id, 'edge' AS kind, label(e) AS name, count(*) AS count
