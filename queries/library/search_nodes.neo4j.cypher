// name: search_nodes
// description: Nodes whose name or id contains the text (any case), exact and prefix matches first; `labels` narrows the search (none: every label).
// param: q: string = wedding
// param: labels: list = 
// param: limit: int = 20
// dialects: neo4j
MATCH (n)
WHERE (size($labels) = 0 OR labels(n)[0] IN $labels)
  AND (toLower(n.name) CONTAINS toLower($q) OR toLower(n.id) CONTAINS toLower($q))
RETURN labels(n)[0] AS label, n.id AS id, n.name AS name
ORDER BY CASE WHEN toLower(n.id) = toLower($q) OR toLower(n.name) = toLower($q) THEN 0
              WHEN toLower(n.name) STARTS WITH toLower($q) THEN 1 ELSE 2 END, label, id
LIMIT $limit
