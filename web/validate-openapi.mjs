#!/usr/bin/env node
// Validates the OpenAPI document of `nightshift serve` with @apidevtools/swagger-parser.
//
//   node validate-openapi.mjs PATH                 a file (JSON or YAML)
//   node validate-openapi.mjs URL TOKEN            e.g. http://127.0.0.1:8470/api/v1/openapi.json
//
// Prints "openapi: valid (N paths)" and exits 0, or prints the errors (including a
// document that cannot be fetched or read) and exits 1; 2 on bad usage.

import fs from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';

const [source, token] = process.argv.slice(2);
if (!source || process.argv.length > 4) {
  console.error('usage: node validate-openapi.mjs PATH | URL TOKEN');
  process.exit(2);
}

async function load() {
  if (/^https?:\/\//i.test(source)) {
    const headers = {Accept: 'application/json'};
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(source, {headers});
    const text = await res.text();
    if (!res.ok) throw new Error(`GET ${source}: HTTP ${res.status} ${text.slice(0, 300)}`);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`GET ${source}: not JSON (${e.message})`);
    }
  }
  if (!fs.existsSync(source)) throw new Error(`${source}: no such file`);
  return source; // swagger-parser reads files itself (JSON or YAML)
}

let doc;
try {
  doc = await load();
} catch (e) {
  console.log(`openapi: ${e.message}`);
  process.exit(1);
}

try {
  // validate() dereferences and mutates its input: keep the original for counting.
  const api = await SwaggerParser.validate(typeof doc === 'string' ? doc : structuredClone(doc));
  const n = Object.keys(api.paths || {}).length;
  const version = api.openapi || api.swagger || '?';
  console.log(`openapi: valid (${n} paths)`);
  if (process.env.VERBOSE) console.log(`openapi ${version}: ${Object.keys(api.paths || {}).join(' ')}`);
  process.exit(0);
} catch (e) {
  console.log('openapi: invalid');
  const details = Array.isArray(e.details) ? e.details : null;
  if (details && details.length) {
    for (const d of details) {
      const where = Array.isArray(d.path) && d.path.length ? `#/${d.path.join('/')}` : (d.instancePath || '#');
      console.log(`  ${where}: ${d.message}`);
    }
  } else {
    console.log(`  ${e.message}`);
  }
  process.exit(1);
}
