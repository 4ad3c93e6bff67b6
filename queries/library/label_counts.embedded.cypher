// name: label_counts
// description: How many nodes each label has.
// dialects: embedded
MATCH (n)
RETURN label(n) AS label, count(*) AS count
ORDER BY count DESC, label
