#!/usr/bin/env python3
"""Checks that the S3 server the tests use is real and refuses a second create-only write.

    s3check.py check          PUT If-None-Match: * (must succeed), the same PUT again with
                              other bytes (must be refused with 412), GET (must return the
                              first bytes), DELETE
    s3check.py create-bucket  create the bucket (an existing one of ours is fine)
    s3check.py public-read    let anyone GET the bucket's objects (a bucket policy), so
                              that a log in it is a static tlog-tiles log over plain HTTP

Settings come from SRCOS_TEST_S3_ENDPOINT, SRCOS_TEST_S3_BUCKET, SRCOS_TEST_S3_ACCESS_KEY_ID,
SRCOS_TEST_S3_SECRET_ACCESS_KEY and SRCOS_TEST_S3_REGION. Requests are path-style and signed
with AWS Signature Version 4; only the standard library is used.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import secrets
import sys
import urllib.parse


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"s3check: {name} is not set")
    return value


class S3:
    def __init__(self):
        self.endpoint = urllib.parse.urlsplit(env("SRCOS_TEST_S3_ENDPOINT"))
        self.bucket = env("SRCOS_TEST_S3_BUCKET")
        self.key_id = env("SRCOS_TEST_S3_ACCESS_KEY_ID")
        self.secret = env("SRCOS_TEST_S3_SECRET_ACCESS_KEY")
        self.region = env("SRCOS_TEST_S3_REGION")

    def request(self, method, key=None, body=b"", headers=None, query=""):
        """query: a canonical query string (sorted, encoded), e.g. "policy=" """
        path = "/" + urllib.parse.quote(self.bucket, safe="-_.~")
        if key is not None:
            path += "/" + urllib.parse.quote(key, safe="-_.~/")
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        payload_hash = hashlib.sha256(body).hexdigest()
        signed = {
            "host": self.endpoint.netloc,
            "x-amz-content-sha256": payload_hash,
            "x-amz-date": amz_date,
        }
        for name, value in (headers or {}).items():
            signed[name.lower()] = value
        names = sorted(signed)
        canonical_request = "\n".join(
            [
                method,
                path,
                query,
                "".join(f"{n}:{signed[n].strip()}\n" for n in names),
                ";".join(names),
                payload_hash,
            ]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                amz_date,
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = ("AWS4" + self.secret).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        out = {n: signed[n] for n in names if n != "host"}
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.key_id}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        out["Content-Length"] = str(len(body))
        if self.endpoint.scheme == "https":
            conn = http.client.HTTPSConnection(self.endpoint.netloc, timeout=30)
        else:
            conn = http.client.HTTPConnection(self.endpoint.netloc, timeout=30)
        try:
            target = path + ("?" + query.removesuffix("=") if query else "")
            conn.request(method, target, body=body, headers=out)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def fail(what, status, body):
    sys.exit(f"s3check: {what}: HTTP {status}: {body[:300].decode(errors='replace')}")


def create_bucket(s3):
    status, body = s3.request("PUT")
    if status == 200 or (status == 409 and b"BucketAlreadyOwnedByYou" in body):
        print(f"s3check: bucket {s3.bucket} ready")
        return
    fail(f"create bucket {s3.bucket}", status, body)


def public_read(s3):
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{s3.bucket}/*"],
            },
            # Without it a missing object is 403, not the 404 readers expect.
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*"]},
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{s3.bucket}"],
            },
        ],
    }
    status, body = s3.request("PUT", body=json.dumps(policy).encode(), query="policy=")
    if status not in (200, 204):
        fail(f"public-read policy on {s3.bucket}", status, body)
    print(f"s3check: anyone may GET the objects of bucket {s3.bucket}")


def check(s3):
    key = "srcos-ci-check/" + secrets.token_hex(8)
    first = b"first write " + secrets.token_bytes(16)
    second = b"second write " + secrets.token_bytes(16)
    create_only = {"If-None-Match": "*"}

    status, body = s3.request("PUT", key, first, create_only)
    if status != 200:
        fail(f"first create-only PUT {key}", status, body)
    status, body = s3.request("PUT", key, second, create_only)
    if status != 412:
        fail(f"second create-only PUT {key} was not refused with 412", status, body)
    status, body = s3.request("GET", key)
    if status != 200:
        fail(f"GET {key}", status, body)
    if body != first:
        sys.exit(f"s3check: GET {key} returned {len(body)} bytes that are not the first write")
    status, body = s3.request("DELETE", key)
    if status not in (200, 204):
        fail(f"DELETE {key}", status, body)
    print(
        f"s3check: {s3.endpoint.geturl()} bucket {s3.bucket}: create-only PUT 200, "
        f"second create-only PUT 412, GET returned the first bytes"
    )


def main():
    commands = {"check": check, "create-bucket": create_bucket, "public-read": public_read}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(commands)}")
    commands[sys.argv[1]](S3())


if __name__ == "__main__":
    main()
