#!/usr/bin/env python3
"""Parses a Prometheus text exposition (stdin) with the reference parser of the
`prometheus_client` package and prints every sample as one JSON object per line:
{"family": ..., "type": ..., "name": ..., "labels": {...}, "value": ...}.

A document the parser refuses makes this script fail (exit status 1), so the test that
runs it fails too. Used by tests/operations.rs.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    families = list(text_string_to_metric_families(text))
    if not families:
        sys.exit("no metric families")
    for family in families:
        for sample in family.samples:
            print(json.dumps({
                "family": family.name,
                "type": family.type,
                "name": sample.name,
                "labels": sample.labels,
                "value": sample.value,
            }))


if __name__ == "__main__":
    main()
