#!/usr/bin/python3
"""Prints "<source> <passed> <failed>" from a meson testlog.json or a pytest junit XML file.
A missing or unreadable file counts as one failure: a runner that produced nothing did not pass."""
import json
import sys
import xml.etree.ElementTree as ET

kind, path = sys.argv[1], sys.argv[2]
passed = failed = 0
try:
    if kind == "meson":
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("result") in ("OK", "EXPECTEDFAIL"):
                    passed += 1
                elif r.get("result") != "SKIP":
                    failed += 1
    else:
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skipped = int(suite.get("skipped", 0))
            passed += tests - bad - skipped
            failed += bad
except (OSError, ValueError, ET.ParseError) as e:
    print(f"count-results: {path}: {e}", file=sys.stderr)
    failed += 1
if passed + failed == 0:
    failed = 1
print(f"{kind} {passed} {failed}")
