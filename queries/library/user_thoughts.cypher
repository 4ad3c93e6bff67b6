// name: user_thoughts
// description: A user's memory (TiM thoughts), newest first, with status and provenance.
// param: user_id: string
// dialects: neo4j, embedded
MATCH (t:Thought)
WHERE t.user = $user_id
RETURN t.id AS id, t.user AS user, t.text AS text, t.head AS head, t.relation AS relation, t.tail AS tail,
       t.session AS session, t.at AS at, t.turns AS turns, t.status AS status,
       t.retired_at AS retired_at, t.retired_by AS retired_by, t.vector AS vector, t.run_id AS run_id
ORDER BY at DESC, id
