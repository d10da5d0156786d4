// Validates a HAR file with har-validator (the HAR 1.2 JSON schema); prints "valid <entries>" or
// the schema errors and exits 1.
import fs from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const validate = require("har-validator");
const har = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
validate.har(har).then(
  () => console.log("valid " + har.log.entries.length),
  (e) => {
    console.log("invalid " + JSON.stringify(e.errors || e.message));
    process.exit(1);
  });
