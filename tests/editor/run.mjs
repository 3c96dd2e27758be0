// Runs the real yaml-language-server, headless over stdio, on the fixtures and checks the
// diagnostics it publishes: good.yaml must have none; in a bad_*.yaml file, every line ending in
// `# expect: <text>` must have an error whose message contains <text> (case-insensitive), and no
// other line may have an error.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const server = join(here, "node_modules", "yaml-language-server", "bin", "yaml-language-server");
const settings = {
  yaml: {
    validate: true,
    hover: false,
    completion: false,
    format: { enable: false },
    schemaStore: { enable: false },
    schemas: {},
  },
};

const child = spawn(process.execPath, [server, "--stdio"], { stdio: ["pipe", "pipe", "pipe"] });
child.stderr.on("data", () => {});
let buffer = Buffer.alloc(0);
let nextId = 1;
const pending = new Map();
const published = new Map();
let lastPublish = Date.now();

function send(message) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
  child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
  child.stdin.write(body);
}

function request(method, params) {
  const id = nextId++;
  send({ id, method, params });
  return new Promise((resolve) => pending.set(id, resolve));
}

function onMessage(msg) {
  if (msg.id !== undefined && msg.method === undefined) {
    pending.get(msg.id)?.(msg.result);
    pending.delete(msg.id);
  } else if (msg.id !== undefined) {
    // A request from the server.
    let result = null;
    if (msg.method === "workspace/configuration") {
      result = (msg.params.items || []).map((item) => (item.section ? settings[item.section] ?? null : settings));
    }
    send({ id: msg.id, result });
  } else if (msg.method === "textDocument/publishDiagnostics") {
    published.set(msg.params.uri, msg.params.diagnostics);
    lastPublish = Date.now();
  }
}

child.stdout.on("data", (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const header = buffer.subarray(0, end).toString();
    const length = Number(/Content-Length: (\d+)/i.exec(header)[1]);
    if (buffer.length < end + 4 + length) return;
    const body = buffer.subarray(end + 4, end + 4 + length).toString("utf8");
    buffer = buffer.subarray(end + 4 + length);
    onMessage(JSON.parse(body));
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function diagnosticsOf(file) {
  const uri = pathToFileURL(file).href;
  send({
    method: "textDocument/didOpen",
    params: { textDocument: { uri, languageId: "yaml", version: 1, text: readFileSync(file, "utf8") } },
  });
  const start = Date.now();
  // Wait for a publication, then for the server to go quiet (the schema loads asynchronously).
  while (Date.now() - start < 30000) {
    await sleep(100);
    if (published.has(uri) && Date.now() - lastPublish > 1500) return published.get(uri);
  }
  throw new Error(`timed out waiting for diagnostics of ${file}`);
}

const root = resolve(here, "..", "..");
await request("initialize", {
  processId: process.pid,
  rootUri: pathToFileURL(root).href,
  capabilities: { workspace: { configuration: true }, textDocument: { publishDiagnostics: {} } },
});
send({ method: "initialized", params: {} });
send({ method: "workspace/didChangeConfiguration", params: { settings } });

const fixtures = join(here, "fixtures");
const files = readdirSync(fixtures).filter((f) => f.endsWith(".yaml")).sort();
let failures = 0;
for (const name of files) {
  const file = join(fixtures, name);
  const lines = readFileSync(file, "utf8").split("\n");
  const expected = new Map();
  lines.forEach((text, i) => {
    const m = /# expect: (.+)$/.exec(text);
    if (m) expected.set(i, m[1].trim().toLowerCase());
  });
  const diagnostics = await diagnosticsOf(file);
  const errors = diagnostics.filter((d) => d.severity === undefined || d.severity === 1);
  const problems = [];
  if (name.startsWith("good")) {
    for (const d of diagnostics) problems.push(`unexpected diagnostic on line ${d.range.start.line + 1}: ${d.message}`);
  } else {
    if (expected.size === 0) problems.push("a bad fixture needs `# expect:` markers");
    for (const [line, text] of expected) {
      const hit = errors.some((d) => d.range.start.line === line && d.message.toLowerCase().includes(text));
      if (!hit) problems.push(`line ${line + 1}: no error containing "${text}"`);
    }
    for (const d of errors) {
      if (!expected.has(d.range.start.line)) {
        problems.push(`unexpected error on line ${d.range.start.line + 1}: ${d.message}`);
      }
    }
  }
  const shown = diagnostics.map((d) => `    ${d.range.start.line + 1}: ${d.message.split("\n")[0]}`).join("\n");
  console.log(`${problems.length ? "FAIL" : "ok  "} ${name} (${diagnostics.length} diagnostics)${shown ? "\n" + shown : ""}`);
  for (const p of problems) console.log(`    ${p}`);
  failures += problems.length ? 1 : 0;
}

await request("shutdown", null);
send({ method: "exit" });
child.kill();
console.log(failures ? `${failures} of ${files.length} fixtures failed` : `all ${files.length} fixtures passed`);
process.exit(failures ? 1 : 0);
