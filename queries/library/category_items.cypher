// name: category_items
// description: Items of a category and of its subcategories down to `depth` levels.
// param: category_id: string
// param: depth: hops = 3
// dialects: neo4j, embedded
MATCH (c:Category {id: $category_id})<-[:BELONGS_TO]-(i:Item)
RETURN i.id AS item, i.name AS name, c.id AS category, 0 AS depth
UNION
MATCH p = (c:Category {id: $category_id})<-[:SUBCATEGORY_OF*1..{{depth}}]-(s:Category)<-[:BELONGS_TO]-(i:Item)
RETURN i.id AS item, i.name AS name, s.id AS category, length(p) - 1 AS depth
