// name: node_properties
// description: One node with every property it has (as a map), found by label and id.
// param: label: label = Intent
// param: id: string = int_wedding_preparation
// dialects: neo4j, embedded
MATCH (n:{{label}} {id: $id})
RETURN n AS node
