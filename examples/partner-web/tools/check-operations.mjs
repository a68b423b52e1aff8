// Checks the page's operations against the API's schema with graphql-js, so a schema change
// that would break this page fails the API's test suite.
//
//   node tools/check-operations.mjs            check persisted-documents.json against ../../schema.graphql
//   node tools/check-operations.mjs --write    after editing a document: recompute its id (the SHA-256 of its text)
//   node tools/check-operations.mjs --schema FILE --manifest FILE
//
// Every document must parse, validate against the schema, hold exactly one named operation
// (the page finds documents by operation name), and be stored under the SHA-256 of its text.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSchema, parse, validate, Kind } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? resolve(args[i + 1]) : fallback;
};
const schemaPath = option("--schema", resolve(here, "../../../schema.graphql"));
const manifestPath = option("--manifest", resolve(here, "../persisted-documents.json"));
const write = args.includes("--write");

const sha256 = (text) => createHash("sha256").update(text, "utf8").digest("hex");

const schema = buildSchema(readFileSync(schemaPath, "utf8"));
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
const problems = [];
const rewritten = {};
const names = new Set();

for (const [id, text] of Object.entries(manifest)) {
  let document;
  try {
    document = parse(text);
  } catch (error) {
    problems.push(`${id}: does not parse: ${error.message}`);
    continue;
  }
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  const name = operations[0]?.name?.value;
  const label = name ?? id;
  if (operations.length !== 1 || !name) {
    problems.push(`${label}: a document holds exactly one named operation`);
  } else if (names.has(name)) {
    problems.push(`${label}: two documents share this operation name`);
  }
  names.add(name);
  for (const error of validate(schema, document)) {
    const where = error.locations?.map((l) => `${l.line}:${l.column}`).join(", ") ?? "";
    problems.push(`${label}: ${error.message}${where ? ` (at ${where})` : ""}`);
  }
  const actual = sha256(text);
  if (actual !== id && !write) {
    problems.push(`${label}: stored under ${id}, but its SHA-256 is ${actual} (run: npm run hash)`);
  }
  rewritten[actual] = text;
}

if (write && problems.length === 0) {
  writeFileSync(manifestPath, JSON.stringify(rewritten, null, 2) + "\n");
  console.log(`rewrote ${manifestPath} (${Object.keys(rewritten).length} documents)`);
}
if (problems.length > 0) {
  console.error(`${problems.length} problem(s) in ${manifestPath} against ${schemaPath}:`);
  for (const problem of problems) console.error(`  - ${problem}`);
  process.exit(1);
}
console.log(`${names.size} operations valid against ${schemaPath}: ${[...names].join(", ")}`);
