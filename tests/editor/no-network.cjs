// Preloaded into yaml-language-server (`node --require`) by run.mjs: refuses every outgoing
// network connection and name lookup, and reports each attempt on stderr so that run.mjs can
// fail the test. Validating the fixtures must need nothing but the local schema file.
"use strict";

const net = require("node:net");
const dns = require("node:dns");

function report(what) {
  process.stderr.write(`NETWORK-ATTEMPT ${what}\n`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const options = args[0];
  // A Unix socket or pipe path (never used by the server over stdio) is let through.
  if (typeof options === "object" && options !== null && !Array.isArray(options) && options.path) {
    return connect.apply(this, args);
  }
  const target =
    typeof options === "object" && options !== null && !Array.isArray(options)
      ? `${options.host ?? "localhost"}:${options.port}`
      : `${args[1] ?? "localhost"}:${args[0]}`;
  report(`connect ${target}`);
  const error = Object.assign(new Error(`network access is blocked in the editor test (${target})`), {
    code: "ECONNREFUSED",
  });
  process.nextTick(() => this.destroy(error));
  return this;
};

for (const name of ["lookup", "resolve", "resolve4", "resolve6"]) {
  const original = dns[name];
  dns[name] = function (host, ...rest) {
    report(`dns.${name} ${host}`);
    const callback = rest.find((arg) => typeof arg === "function");
    const error = Object.assign(new Error(`name lookups are blocked in the editor test (${host})`), {
      code: "ENOTFOUND",
    });
    if (callback) process.nextTick(() => callback(error));
    else return original.call(this, host, ...rest);
  };
}
