// name: forget_user_thoughts
// description: Delete a user's memory on request (right to be forgotten): every Thought of the user, with its edges.
// param: user_id: string
// dialects: neo4j, embedded
MATCH (t:Thought)
WHERE t.user = $user_id
DETACH DELETE t
