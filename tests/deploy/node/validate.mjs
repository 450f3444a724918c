// Validates Kubernetes objects offline against the Kubernetes OpenAPI schemas.
//
//   node validate.mjs OBJECTS.json
//
// OBJECTS.json is a JSON array of {"source": "...", "object": {...}}. For each
// object it prints one JSON line {source, apiVersion, kind, name, errors:
// [{path, message}]} and exits 1 if any object has an error (2 on bad usage).
//
// Two checks, like `kubectl apply` with strict field validation:
//  1. schema: the object against the OpenAPI schema of its apiVersion/kind
//     (types, required fields, enums, formats such as quantities), with the
//     validators kubernetes-models generates from the Kubernetes OpenAPI spec;
//  2. unknown fields: every field name must exist in the API type, looked up
//     in the type maps @kubernetes/client-node generates from the same spec,
//     so a misspelt field (mountPropogation) is an error, not silently
//     dropped as the API server would do without strict validation.
import { readFileSync } from "node:fs";
import * as clientModels from "@kubernetes/client-node/dist/gen/models/ObjectSerializer.js";

function splitApiVersion(apiVersion) {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? ["", apiVersion] : [apiVersion.slice(0, slash), apiVersion.slice(slash + 1)];
}

const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1);

async function loadModel(apiVersion, kind) {
  const [group, version] = splitApiVersion(apiVersion);
  const path = group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
  try {
    const mod = await import(path);
    return mod[kind];
  } catch {
    return undefined;
  }
}

// The client-node type of an object: V1DaemonSet, V1CSIDriver, or with the
// group as a prefix where Kubernetes has two kinds of one name (CoreV1Event).
function clientTypeName(apiVersion, kind) {
  const [group, version] = splitApiVersion(apiVersion);
  const ver = capitalize(version);
  const prefix = group ? capitalize(group.split(".")[0]) : "Core";
  for (const name of [ver + kind, prefix + ver + kind]) {
    if (clientModels[name]?.attributeTypeMap) return name;
  }
  return undefined;
}

function attributes(type) {
  const cls = clientModels[type];
  if (!cls?.attributeTypeMap) return undefined;
  const list = typeof cls.getAttributeTypeMap === "function" ? cls.getAttributeTypeMap() : cls.attributeTypeMap;
  return new Map(list.map((a) => [a.baseName, a.type]));
}

function unknownFields(value, type, path, errors) {
  if (value === null || typeof value !== "object") return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1], `${path}/${i}`, errors));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value)) unknownFields(v, map[1], `${path}/${k}`, errors);
    return;
  }
  const attrs = attributes(type);
  if (!attrs || Array.isArray(value)) return; // free-form (RawExtension, IntOrString, ...)
  for (const [key, v] of Object.entries(value)) {
    if (!attrs.has(key)) {
      errors.push({ path: `${path}/${key}`, message: `unknown field "${key}" (not a field of ${type})` });
    } else {
      unknownFields(v, attrs.get(key), `${path}/${key}`, errors);
    }
  }
}

async function validate(object) {
  const errors = [];
  const { apiVersion, kind } = object ?? {};
  if (typeof apiVersion !== "string" || typeof kind !== "string") {
    return [{ path: "", message: "apiVersion and kind must be strings" }];
  }
  const Model = await loadModel(apiVersion, kind);
  if (!Model) return [{ path: "", message: `no schema for ${apiVersion} ${kind}` }];
  try {
    new Model(object).validate();
  } catch (e) {
    const list = Array.isArray(e?.errors) ? e.errors : [];
    if (list.length === 0) errors.push({ path: "", message: String(e?.message ?? e) });
    for (const err of list) {
      let message = err.message ?? err.keyword;
      if (err.params?.allowedValues) message += ` (${err.params.allowedValues.join(", ")})`;
      if (err.params?.missingProperty) message = `missing required field "${err.params.missingProperty}"`;
      errors.push({ path: err.instancePath ?? "", message, keyword: err.keyword });
    }
  }
  // An IntOrString/quantity field is oneOf[number, formatted string]: when
  // the string's format is wrong, ajv also reports the number branch and the
  // oneOf itself. The format error says it all.
  const formatPaths = new Set(errors.filter((e) => e.keyword === "format").map((e) => e.path));
  for (let i = errors.length - 1; i >= 0; i--) {
    const e = errors[i];
    if (formatPaths.has(e.path) && (e.keyword === "type" || e.keyword === "oneOf")) errors.splice(i, 1);
  }
  const clientType = clientTypeName(apiVersion, kind);
  if (clientType) unknownFields(object, clientType, "", errors);
  else errors.push({ path: "", message: `no field list for ${apiVersion} ${kind}` });
  // Not in the OpenAPI schema, but rejected by kubectl before it is sent.
  if (!object.metadata?.name && !object.metadata?.generateName) {
    errors.push({ path: "/metadata/name", message: "missing required field \"name\"" });
  }
  const seen = new Set();
  return errors
    .filter((e) => {
      const key = `${e.path}\0${e.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map(({ path, message }) => ({ path, message }));
}

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node validate.mjs OBJECTS.json");
    process.exit(2);
  }
  const items = JSON.parse(readFileSync(file, "utf8"));
  let bad = 0;
  for (const { source, object } of items) {
    const errors = await validate(object);
    if (errors.length) bad++;
    console.log(JSON.stringify({
      source,
      apiVersion: object?.apiVersion,
      kind: object?.kind,
      name: object?.metadata?.name ?? object?.metadata?.generateName ?? "",
      errors,
    }));
  }
  process.exit(bad ? 1 : 0);
}

await main();
