// name: audience_campaign
// description: A campaign's targeted intents (with the TARGETS confidence), its domain and budget.
// param: campaign_id: string =
// dialects: neo4j, embedded
MATCH (c:Campaign {id: $campaign_id})
OPTIONAL MATCH (c)-[t:TARGETS]->(i:Intent)
OPTIONAL MATCH (c)-[:IN_DOMAIN]->(d:Domain)
RETURN c.id AS campaign, c.budget AS budget, i.id AS intent, t.confidence AS weight, d.id AS domain
ORDER BY intent
