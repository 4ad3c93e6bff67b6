// name: search_nodes
// description: Nodes whose name or id contains the text (any case), exact and prefix matches first; `labels` narrows the search (none: every label).
// param: q: string = wedding
// param: labels: list = 
// param: limit: int = 20
// dialects: embedded
MATCH (n)
WHERE (size($labels) = 0 OR label(n) IN $labels)
  AND (lower(n.name) CONTAINS lower($q) OR lower(n.id) CONTAINS lower($q))
RETURN label(n) AS label, n.id AS id, n.name AS name
ORDER BY CASE WHEN lower(n.id) = lower($q) OR lower(n.name) = lower($q) THEN 0
              WHEN lower(n.name) STARTS WITH lower($q) THEN 1 ELSE 2 END, label, id
LIMIT $limit
