// The editor test: runs the real yaml-language-server (pinned in package-lock.json), headless over
// stdio, on the connector files in fixtures/ and on the shipped connectors in connectors/, and
// checks the diagnostics it publishes:
//
//   bad_*.yaml  mark each mistake with a trailing `# expect: <text>` comment: that line (1-based)
//               must get an error whose message contains <text> (case-insensitive), and no line
//               without a marker may get an error;
//   any other file (good.yaml, the connectors) must get no diagnostic at all.
//
// Every file names the schema with a `# yaml-language-server: $schema=<relative path>`
// modeline; the test also checks that the server resolved it to schemas/connector.schema.json.
// The server runs with no network (no-network.cjs is preloaded into it): any connection or name
// lookup it attempts fails the test.
//
// Usage: node run.mjs [file.yaml ...]   (default: fixtures/*.yaml and connectors/*.yaml).
// Exit status 0 on success, 1 on any failure. No dependencies besides the pinned server, which is
// 1.25.0: the 2.x line needs Node 22.13 or later.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");
const serverPackage = join(here, "node_modules", "yaml-language-server");
const serverBin = join(serverPackage, "bin", "yaml-language-server");
const schemaUri = pathToFileURL(join(root, "schemas", "connector.schema.json")).href;
const fixturesDir = join(here, "fixtures");
const connectorsDir = join(root, "connectors");

// A publication counts once the server has published nothing more for the file for this long
// (it may validate a file more than once, e.g. after a configuration change).
const QUIET_MS = 1000;
// Longest wait for the first publication of a file, for a request's answer, and for everything.
const FILE_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 20_000;
const OVERALL_TIMEOUT_MS = 120_000;

const settings = {
  yaml: {
    validate: true,
    hover: false,
    completion: false,
    format: { enable: false },
    schemas: {},
    schemaStore: { enable: false },
    kubernetesCRDStore: { enable: false },
    yamlVersion: "1.2",
  },
  http: { proxy: "", proxyStrictSSL: true },
};

const serverLog = [];
const networkAttempts = [];
let child;
let finished = false;

function fail(message) {
  console.log(`FAIL ${message}`);
  if (serverLog.length) console.log(`server stderr (last lines):\n${serverLog.slice(-20).join("\n")}`);
  child?.kill();
  process.exit(1);
}

const overall = setTimeout(
  () => fail(`the editor test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`),
  OVERALL_TIMEOUT_MS,
);

// --- The server and JSON-RPC over stdio with Content-Length framing ---------------------------

let serverVersion;
try {
  serverVersion = JSON.parse(readFileSync(join(serverPackage, "package.json"), "utf8")).version;
} catch {
  fail(`yaml-language-server is not installed: run \`npm ci\` in ${here}`);
}

child = spawn(
  process.execPath,
  ["--require", join(here, "no-network.cjs"), serverBin, "--stdio"],
  { cwd: here, stdio: ["pipe", "pipe", "pipe"] },
);
child.on("error", (error) => fail(`could not start yaml-language-server: ${error.message}`));
child.on("exit", (code, signal) => {
  if (!finished) fail(`yaml-language-server exited early (code ${code}, signal ${signal})`);
});
child.stdin.on("error", () => {});
let stderrRest = "";
child.stderr.on("data", (chunk) => {
  const lines = (stderrRest + chunk.toString("utf8")).split("\n");
  stderrRest = lines.pop();
  for (const line of lines) {
    serverLog.push(line);
    if (line.startsWith("NETWORK-ATTEMPT ")) networkAttempts.push(line.slice("NETWORK-ATTEMPT ".length));
  }
});

let nextId = 1;
const pending = new Map();
const publications = new Map(); // uri -> { diagnostics, at }
let configurationServed;
const configurationAsked = new Promise((resolve) => (configurationServed = resolve));

function send(message) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
  child.stdin.write(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, "ascii"), body]));
}

function notify(method, params) {
  send({ method, params });
}

function request(method, params) {
  const id = nextId++;
  send({ id, method, params });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`no answer to ${method} within ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, (msg) => {
      clearTimeout(timer);
      if (msg.error) reject(new Error(`${method} failed: ${msg.error.message}`));
      else resolve(msg.result);
    });
  });
}

function configurationFor(item) {
  if (!item.section) return settings;
  return item.section.split(".").reduce((value, key) => (value == null ? null : value[key] ?? null), settings);
}

function onServerRequest(msg) {
  let result = null; // client/registerCapability, window/workDoneProgress/create, ... all get null
  if (msg.method === "workspace/configuration") {
    result = (msg.params?.items ?? []).map(configurationFor);
    configurationServed();
  }
  send({ id: msg.id, result });
}

function onMessage(msg) {
  if (msg.method === undefined) {
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  } else if (msg.id !== undefined) {
    onServerRequest(msg);
  } else if (msg.method === "textDocument/publishDiagnostics") {
    publications.set(msg.params.uri, { diagnostics: msg.params.diagnostics, at: Date.now() });
  }
}

let input = Buffer.alloc(0);
child.stdout.on("data", (chunk) => {
  input = Buffer.concat([input, chunk]);
  for (;;) {
    const end = input.indexOf("\r\n\r\n");
    if (end < 0) return;
    const header = input.subarray(0, end).toString("ascii");
    const match = /^Content-Length: *(\d+)/im.exec(header);
    if (!match) fail(`malformed message header from the server: ${JSON.stringify(header)}`);
    const length = Number(match[1]);
    if (input.length < end + 4 + length) return;
    const body = input.subarray(end + 4, end + 4 + length).toString("utf8");
    input = input.subarray(end + 4 + length);
    onMessage(JSON.parse(body));
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function diagnosticsOf(uri, text) {
  publications.delete(uri);
  notify("textDocument/didOpen", { textDocument: { uri, languageId: "yaml", version: 1, text } });
  const start = Date.now();
  for (;;) {
    await sleep(50);
    const publication = publications.get(uri);
    if (publication && Date.now() - publication.at >= QUIET_MS) return publication;
    if (!publication && Date.now() - start > FILE_TIMEOUT_MS) {
      throw new Error(`timed out: no diagnostics published within ${FILE_TIMEOUT_MS / 1000} s`);
    }
  }
}

// --- Fixtures --------------------------------------------------------------------------------

const MARKER = /#\s*expect:\s*(.+?)\s*$/;
const SEVERITY = { 1: "error", 2: "warning", 3: "info", 4: "hint" };

function expectationsOf(text) {
  const expected = new Map(); // 0-based line -> lower-case substring
  text.split(/\r?\n/).forEach((line, i) => {
    const match = MARKER.exec(line);
    if (match) expected.set(i, match[1].toLowerCase());
  });
  return expected;
}

function check(name, text, diagnostics) {
  const problems = [];
  const isError = (d) => (d.severity ?? 1) === 1;
  if (!name.startsWith("bad_")) {
    for (const d of diagnostics) problems.push(`line ${d.range.start.line + 1}: unexpected ${SEVERITY[d.severity ?? 1]}`);
    return problems;
  }
  const expected = expectationsOf(text);
  if (expected.size === 0) problems.push("a bad fixture needs at least one `# expect:` marker");
  for (const [line, substring] of expected) {
    const onLine = diagnostics.filter((d) => d.range.start.line === line && isError(d));
    if (!onLine.some((d) => d.message.toLowerCase().includes(substring))) {
      problems.push(
        onLine.length
          ? `line ${line + 1}: no error containing "${substring}" (errors there: ${onLine.map((d) => JSON.stringify(d.message)).join(", ")})`
          : `line ${line + 1}: expected an error containing "${substring}", got none on that line`,
      );
    }
  }
  for (const d of diagnostics) {
    if (isError(d) && !expected.has(d.range.start.line)) {
      problems.push(`line ${d.range.start.line + 1}: unexpected error (no \`# expect:\` marker on that line)`);
    }
  }
  return problems;
}

function describe(d) {
  const where = `${d.range.start.line + 1}:${d.range.start.character + 1}`;
  return `${where.padStart(6)} ${SEVERITY[d.severity ?? 1].padEnd(7)} ${d.message.replace(/\s*\n\s*/g, " ")}`;
}

const yamlFilesIn = (dir) =>
  readdirSync(dir)
    .filter((file) => file.endsWith(".yaml"))
    .sort()
    .map((file) => join(dir, file));
const requested = process.argv.slice(2);
const files = requested.length
  ? requested.map((file) => resolve(file))
  : [...yamlFilesIn(fixturesDir), ...yamlFilesIn(connectorsDir)];
if (!files.some((file) => basename(file).startsWith("bad_")) && !requested.length) fail(`no bad_*.yaml in ${fixturesDir}`);

// --- Run ---------------------------------------------------------------------------------------

console.log(`editor test: yaml-language-server ${serverVersion}, schema ${schemaUri}`);
try {
  await request("initialize", {
    processId: process.pid,
    clientInfo: { name: "connector-editor-test" },
    rootUri: pathToFileURL(root).href,
    workspaceFolders: [{ uri: pathToFileURL(root).href, name: "main" }],
    capabilities: {
      workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } },
      textDocument: { publishDiagnostics: { relatedInformation: false } },
    },
  });
} catch (error) {
  fail(`initialize: ${error.message}`);
}
notify("initialized", {});
notify("workspace/didChangeConfiguration", { settings });
// The server pulls its settings (workspace/configuration) once initialized; open files only then,
// so that no file is validated with the defaults (which would enable the online schema store).
const asked = await Promise.race([configurationAsked.then(() => true), sleep(REQUEST_TIMEOUT_MS)]);
if (!asked) fail(`the server did not ask for its settings within ${REQUEST_TIMEOUT_MS / 1000} s`);
await sleep(300); // it applies them once answered

// All files are opened at once and validated side by side; each is checked once the server has
// gone quiet about it.
const outcomes = await Promise.all(
  files.map(async (file) => {
    const uri = pathToFileURL(file).href;
    const text = readFileSync(file, "utf8");
    try {
      return { file, uri, text, publication: await diagnosticsOf(uri, text) };
    } catch (error) {
      return { file, uri, text, error };
    }
  }),
);

let failed = 0;
for (const { file, uri, text, publication, error } of outcomes) {
  const diagnostics = [...(publication?.diagnostics ?? [])].sort(
    (a, b) => a.range.start.line - b.range.start.line || a.range.start.character - b.range.start.character,
  );
  let problems;
  if (error) {
    problems = [error.message];
  } else {
    problems = check(basename(file), text, diagnostics);
    try {
      const schemas = await request("yaml/get/jsonSchema", uri);
      const used = (schemas ?? []).map((s) => s.uri);
      if (used.length !== 1 || used[0] !== schemaUri) {
        problems.push(`the server validated against ${JSON.stringify(used)}, not [${JSON.stringify(schemaUri)}]`);
      }
    } catch (error) {
      problems.push(error.message);
    }
  }
  notify("textDocument/didClose", { textDocument: { uri } });
  const expected = expectationsOf(text);
  const count = publication
    ? `${diagnostics.length} diagnostic${diagnostics.length === 1 ? "" : "s"}`
    : "no diagnostics published";
  console.log(`${problems.length ? "FAIL" : "ok  "} ${relative(root, file)} (${count}${expected.size ? `, ${expected.size} expected` : ""})`);
  for (const d of diagnostics) console.log(`    ${describe(d)}`);
  for (const problem of problems) console.log(`    ! ${problem}`);
  if (problems.length) failed++;
}

if (networkAttempts.length) {
  console.log(`FAIL the server tried to use the network: ${[...new Set(networkAttempts)].join(", ")}`);
  failed++;
}

finished = true;
try {
  await request("shutdown", null);
  notify("exit", null);
} catch {
  // The outcome is known; a server that does not shut down cleanly is killed below.
}
await sleep(100);
child.kill();
clearTimeout(overall);
console.log(failed ? `${failed} failure(s) in ${files.length} files` : `all ${files.length} files passed`);
process.exit(failed ? 1 : 0);
