// Lints Cypher with Neo4j's own language support, offline, one process per batch.
//
// stdin:  [{"name": str, "query": str, "parameters": {name: sampleValue},
//           "labels": [str], "relationshipTypes": [str]}, ...]
// stdout: [{"name": str, "diagnostics": [{"severity": int, "message": str,
//           "line": int, "character": int}]}, ...]
// severity follows the LSP: 1 error, 2 warning, 3 information, 4 hint.
// line and character are 0-based. Exits 2 with a message on stderr on malformed input.
import { lintCypherQuery } from '@neo4j-cypher/language-support';

function fail(message) {
  process.stderr.write(`lint.mjs: ${message}\n`);
  process.exit(2);
}

function isStringArray(value) {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function checkItem(item, index) {
  const where = `item ${index}`;
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    fail(`${where} is not an object`);
  }
  if (typeof item.name !== 'string') fail(`${where} has no string "name"`);
  if (typeof item.query !== 'string') fail(`${where} (${item.name}) has no string "query"`);
  const params = item.parameters ?? {};
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    fail(`${where} (${item.name}): "parameters" must be an object`);
  }
  for (const key of ['labels', 'relationshipTypes']) {
    if (item[key] !== undefined && !isStringArray(item[key])) {
      fail(`${where} (${item.name}): "${key}" must be an array of strings`);
    }
  }
}

function lintItem(item) {
  const dbSchema = {
    parameters: item.parameters ?? {},
    labels: item.labels ?? [],
    relationshipTypes: item.relationshipTypes ?? [],
  };
  const { diagnostics } = lintCypherQuery(item.query, dbSchema);
  return {
    name: item.name,
    diagnostics: diagnostics.map((d) => ({
      severity: d.severity ?? 1,
      message: d.message,
      line: d.range.start.line,
      character: d.range.start.character,
    })),
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const text = await readStdin();
let items;
try {
  items = JSON.parse(text);
} catch (err) {
  fail(`stdin is not JSON: ${err.message}`);
}
if (!Array.isArray(items)) fail('stdin must be a JSON array of {name, query, ...} objects');
items.forEach(checkItem);
process.stdout.write(JSON.stringify(items.map(lintItem)));
process.stdout.write('\n');
