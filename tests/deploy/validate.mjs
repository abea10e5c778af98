// Validates Kubernetes objects offline against the API schemas of the npm
// packages kubernetes-models (core kinds), @kubernetes-models/prometheus-operator
// (PodMonitor, PrometheusRule) and @kubernetes-models/keda (ScaledObject).
//
//   node validate.mjs OBJECTS.json
//
// OBJECTS.json is a JSON array of objects (check_deploy.py writes it from
// `kubectl kustomize`). Prints one line per object, "ok KIND NAME" or
// "invalid KIND NAME: PATH MESSAGE; ...", and exits 1 if any object is
// invalid or of a kind none of the packages has a schema for: nothing passes
// unchecked. The packages are imported from the node_modules beside this file
// (an ES module resolves from its own location and ignores NODE_PATH), so
// check_deploy.py copies it into the directory `npm ci` installed them in.
import { readFileSync } from "node:fs";
import * as k8s from "kubernetes-models";
import * as promOperator from "@kubernetes-models/prometheus-operator";
import * as keda from "@kubernetes-models/keda";

// "apiVersion kind" -> the model class, found by walking the packages' exports
// (group -> version -> class).
function models() {
  const found = new Map();
  const walk = (ns, depth) => {
    for (const v of Object.values(ns)) {
      if (typeof v === "function" && v.apiVersion && v.kind)
        found.set(`${v.apiVersion} ${v.kind}`, v);
      else if (v && typeof v === "object" && depth < 4)
        walk(v, depth + 1);
    }
  };
  for (const pkg of [k8s, promOperator, keda])
    walk(pkg, 0);
  return found;
}

function describe(err) {
  const path = err.instancePath || "/";
  const extra = err.params && err.params.allowedValues
    ? ` (${err.params.allowedValues.join(", ")})`
    : err.params && err.params.missingProperty
      ? ` (${err.params.missingProperty})`
      : "";
  return `${path} ${err.message}${extra}`;
}

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate.mjs OBJECTS.json");
  process.exit(2);
}
const objects = JSON.parse(readFileSync(file, "utf8"));
const byType = models();
let bad = 0;
for (const obj of objects) {
  const name = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
  const Model = byType.get(`${obj.apiVersion} ${obj.kind}`);
  if (!Model) {
    console.log(`invalid ${name}: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
    bad++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`ok ${name}`);
  } catch (e) {
    const errors = Array.isArray(e.errors) && e.errors.length ? e.errors.map(describe) : [e.message];
    console.log(`invalid ${name}: ${errors.join("; ")}`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
