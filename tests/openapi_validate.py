#!/usr/bin/env python3
"""Validates an OpenAPI document with `openapi-spec-validator`, following every $ref
(relative refs resolve against the document's own URL, so a live server's
/openapi.json must serve the schemas it cites). Argument: a file path or an http URL.
Exit status 0 when valid; otherwise the validator's error on stderr. Used by
tests/openapi.rs."""
import sys

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename


def main():
    where = sys.argv[1]
    if where.startswith("http://"):
        import json
        import urllib.request
        with urllib.request.urlopen(where, timeout=30) as answer:
            spec = json.load(answer)
        base = where
    else:
        spec, base = read_from_filename(where)
    validate(spec, base_uri=base)
    print("valid", spec["openapi"], len(spec["paths"]), "paths")


if __name__ == "__main__":
    main()
