#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Keeps docs/config.md and proto/schema/rules.schema.json in step: every rule set and rule
# shown in the doc validates against the schema, and rule sets the parser refuses do not.
# Usage: check_rules_schema.py SOURCE_DIR
import json
import re
import sys

import jsonschema

src = sys.argv[1]
schema = json.load(open(f"{src}/proto/schema/rules.schema.json"))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
doc = open(f"{src}/docs/config.md", encoding="utf-8").read()
blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", doc, re.S)]
sets = [b for b in blocks if "files" in b]
rules = [b for b in blocks if "type" in b]
assert sets and len(rules) >= 10, f"doc examples not found ({len(sets)} sets, {len(rules)} rules)"
for r in rules:
    sets.append({"roots": ["/r"], "files": [{"glob": "**", "rules": [r]}]})
bad = 0
for s in sets:
    errs = list(v.iter_errors(s))
    if errs:
        bad += 1
        print(f"doc example refused by the schema: {json.dumps(s)}: {errs[0].message}")


def one(rule):
    return {"roots": ["/r"], "files": [{"glob": "**", "rules": [rule]}]}


refused = [
    {"files": [{"glob": "*", "rules": [{"type": "require", "pattern": "x"}]}]},
    {"roots": [], "files": [{"glob": "*", "rules": [{"type": "require", "pattern": "x"}]}]},
    {"roots": ["srv"], "files": [{"glob": "*", "rules": [{"type": "require", "pattern": "x"}]}]},
    {"roots": ["/srv"], "files": [{"glob": "../*", "rules": [{"type": "require", "pattern": "x"}]}]},
    {"roots": ["/srv"], "files": []},
    one({"type": "toml", "key": "a", "set": "b"}),
    one({"type": "regex", "pattern": "a"}),
    one({"type": "regex", "pattern": "a", "replacement": "b"}),
    one({"type": "regex", "pattern": "a", "replace": "b", "flags": "q"}),
    one({"type": "regex", "pattern": "a", "replace": "b", "count": 0}),
    one({"type": "ini", "key": "a"}),
    one({"type": "ini", "key": "a", "set": "b", "delete": True}),
    one({"type": "json", "pointer": "a", "set": 1}),
    one({"type": "yaml", "path": "a", "set": {"b": 1}}),
    {"schema": "other/1", "roots": ["/srv"], "files": [{"glob": "*", "rules": [{"type": "require", "pattern": "x"}]}]},
]
for s in refused:
    if v.is_valid(s):
        bad += 1
        print(f"schema accepts what fluid-config refuses: {json.dumps(s)}")
print(f"{len(sets)} doc examples valid, {len(refused)} bad rule sets refused" if not bad else f"{bad} problem(s)")
sys.exit(1 if bad else 0)
