// A minimal OTLP/HTTP collector for tests: decodes every POSTed ExportTraceServiceRequest (JSON
// encoding) with the official OpenTelemetry protobuf definitions (generated from
// opentelemetry-proto and shipped in @opentelemetry/otlp-transformer), round-trips it through
// the binary protobuf encoding, and prints one JSON line per span as decoded. Prints
// "listening <port>" first. Bodies that do not verify against the schema get a 400 and a
// "reject <reason>" line.
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const root = require("@opentelemetry/otlp-transformer/build/src/generated/root.js");
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

// OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping expects base64.
function idsToBytes(req) {
  for (const rs of req.resourceSpans || []) {
    for (const ss of rs.scopeSpans || []) {
      for (const span of ss.spans || []) {
        for (const k of ["traceId", "spanId", "parentSpanId"]) {
          if (typeof span[k] !== "string") continue;
          if (!/^([0-9a-f]{2})*$/.test(span[k])) throw new Error(`${k} is not lowercase hex`);
          span[k] = Buffer.from(span[k], "hex");
        }
      }
    }
  }
  return req;
}

function value(v) {
  if (v.stringValue != null) return v.stringValue;
  if (v.intValue != null) return Number(v.intValue);
  if (v.boolValue != null) return v.boolValue;
  if (v.doubleValue != null) return v.doubleValue;
  return null;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    try {
      if (req.headers["content-type"] !== "application/json") throw new Error("content-type");
      const plain = idsToBytes(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      // fromObject takes the OTLP/JSON forms (64-bit integers as strings, enums as numbers);
      // verify then checks the message against the schema.
      const message = Request.fromObject(plain);
      const problem = Request.verify(message);
      if (problem) throw new Error(problem);
      const wire = Request.encode(message).finish();
      const back = Request.toObject(Request.decode(wire), { longs: String, enums: String });
      for (const rs of back.resourceSpans) {
        const resource = {};
        for (const a of rs.resource.attributes) resource[a.key] = value(a.value);
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            const attributes = {};
            for (const a of s.attributes) attributes[a.key] = value(a.value);
            console.log(JSON.stringify({
              traceId: Buffer.from(s.traceId).toString("hex"),
              spanId: Buffer.from(s.spanId).toString("hex"),
              parentSpanId: s.parentSpanId ? Buffer.from(s.parentSpanId).toString("hex") : "",
              name: s.name, kind: s.kind, start: s.startTimeUnixNano, end: s.endTimeUnixNano,
              status: s.status ? s.status.code || "STATUS_CODE_UNSET" : "STATUS_CODE_UNSET",
              attributes, resource, scope: ss.scope ? ss.scope.name : "",
            }));
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    } catch (e) {
      console.log("reject " + e.message);
      res.writeHead(400);
      res.end();
    }
  });
});
server.listen(0, "127.0.0.1", () => console.log("listening " + server.address().port));
