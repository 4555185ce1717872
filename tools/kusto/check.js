#!/usr/bin/env node
// Parse and semantically analyse KQL with Microsoft's Kusto.Language (npm @kusto/language-service-next).
// Input (stdin, JSON): {"queries": [{"name": "...", "database": "defender"|"sentinel", "query": "..."}]}
// Table schemas: schemas.json next to this script ({database: {table: {column: type}}}).
// Output (stdout, JSON): [{"name": "...", "diagnostics": [{"severity", "code", "message", "start", "length"}]}]
"use strict";
const fs = require("fs");
const path = require("path");

const pkg = path.join(__dirname, "node_modules", "@kusto", "language-service-next");
global.Bridge = require(path.join(pkg, "bridge.min.js"));
require(path.join(pkg, "Kusto.Language.Bridge.min.js"));
const K = global.Kusto.Language;

const schemas = JSON.parse(fs.readFileSync(path.join(__dirname, "schemas.json"), "utf8"));
const globalsByDb = {};
for (const [db, tables] of Object.entries(schemas)) {
  const symbols = Object.entries(tables).sort().map(([name, columns]) => {
    const text = "(" + Object.entries(columns).map(([c, t]) => `['${c}']:${t}`).join(", ") + ")";
    return new K.Symbols.TableSymbol.$ctor7(name, text, "");
  });
  const database = new K.Symbols.DatabaseSymbol.$ctor1(db, System.Array.init(symbols, K.Symbols.Symbol), false);
  globalsByDb[db] = K.GlobalState.Default.WithDatabase(database);
}

const input = JSON.parse(fs.readFileSync(0, "utf8"));
const out = [];
for (const item of input.queries) {
  const globals = globalsByDb[item.database || "sentinel"];
  if (!globals) {
    out.push({ name: item.name, diagnostics: [{ severity: "Error", code: "NO-DB", message: "unknown database " + item.database, start: 0, length: 0 }] });
    continue;
  }
  const code = K.KustoCode.ParseAndAnalyze(item.query, globals);
  const diagnostics = code.GetDiagnostics();
  const list = [];
  const count = diagnostics.Count;
  for (let i = 0; i < count; i++) {
    const d = diagnostics.getItem(i);
    list.push({ severity: String(d.Severity), code: String(d.Code), message: String(d.Message), start: d.Start, length: d.Length });
  }
  out.push({ name: item.name, diagnostics: list });
}
process.stdout.write(JSON.stringify(out) + "\n");
