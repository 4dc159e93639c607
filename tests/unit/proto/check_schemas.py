#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# proto/schema/*.schema.json agree with docs/protocol.md, checked by a validator that is not
# ours (python3-jsonschema): every wire-message schema (fluid.*.schema.json; other files
# there, e.g. rules.schema.json, belong to their programs) is a valid draft 2020-12 schema, every ```json
# example validates against the schema it names, and a few broken variants do not.
import copy, glob, json, re, sys

import jsonschema

src = sys.argv[1]
schemas = {}
for path in sorted(glob.glob(f"{src}/proto/schema/fluid.*.schema.json")):
    s = json.load(open(path))
    jsonschema.Draft202012Validator.check_schema(s)
    schemas[s["properties"]["schema"]["const"]] = s
if len(schemas) < 11:
    sys.exit(f"only {len(schemas)} schemas in proto/schema")

doc = open(f"{src}/docs/protocol.md").read()
examples = [json.loads(m.group(1)) for m in re.finditer(r"```json\n(.*?)```", doc, re.S)]
if not examples:
    sys.exit("no ```json examples in docs/protocol.md")
seen = set()
for ex in examples:
    name = ex["schema"]
    if name not in schemas:
        sys.exit(f"no schema file for {name}")
    jsonschema.Draft202012Validator(schemas[name]).validate(ex)
    seen.add(name)
missing = set(schemas) - seen
if missing:
    sys.exit(f"no example of {sorted(missing)} in docs/protocol.md")

def must_fail(ex, what):
    v = jsonschema.Draft202012Validator(schemas[ex["schema"]])
    if v.is_valid(ex):
        sys.exit(f"schema {ex['schema']} accepts a broken message: {what}")

for ex in examples:
    bad = copy.deepcopy(ex); bad["unknown_field"] = 1
    must_fail(bad, "unknown field")
    bad = copy.deepcopy(ex); bad.pop("relocation_id", None); bad.pop("broker_id", None)
    if ex["schema"] not in ("fluid.broker/1",):
        must_fail(bad, "missing relocation_id")
task = next(e for e in examples if e["schema"] == "fluid.task/1")
bad = copy.deepcopy(task); bad["stages"][0]["kind"] = "imge"; must_fail(bad, "unknown kind")
bad = copy.deepcopy(task); bad["task_id"] = "t.1"; must_fail(bad, "dot in id")
bad = copy.deepcopy(task); bad["timeout_s"] = "60"; must_fail(bad, "string timeout")
print(f"{len(examples)} examples, {len(schemas)} schemas: ok")
