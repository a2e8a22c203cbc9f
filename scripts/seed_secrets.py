#!/usr/bin/env python3
"""Seed the local Secrets Manager (moto) with the secrets `make run` needs.

usage: seed_secrets.py ENDPOINT SIGNING_SECRET [CALLBACK_SECRET]

ENDPOINT is the moto endpoint (http://127.0.0.1:PORT); SIGNING_SECRET is a
`whsec_<base64>` key. CALLBACK_SECRET defaults to a fresh random key. Each
secret is created, or updated when it already exists, so re-running is safe.
"""

import base64
import json
import os
import secrets
import sys

import boto3

REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
PREFIX = "crs-restore/"


def random_key() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    endpoint, signing = argv[1], argv[2]
    callback = argv[3] if len(argv) == 4 else random_key()
    if not endpoint.startswith("http://127.0.0.1:"):
        print(f"refusing non-loopback endpoint {endpoint!r}", file=sys.stderr)
        return 2

    # boto3 reads AWS_DEFAULT_REGION, not AWS_REGION; pass everything explicitly.
    client = boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )

    seeds = {
        PREFIX + "signing-keys": json.dumps(
            {
                # The local key may clone: the sandbox's purchases cost nothing.
                "keys": [{"id": "local-dev", "secret": signing, "allow": ["crs-*"], "clone": True}],
                "callbackSecret": callback,
            }
        ),
        PREFIX + "tencent": json.dumps(
            {
                "secretId": "AKIDsandboxEXAMPLE0000000000000000000",
                "secretKey": "sandbox-secret-key-EXAMPLE-000000",
            }
        ),
        PREFIX + "instances/crs-izbob1wh": "12D3E@!r5ed",
        PREFIX + "instances/crs-drill001": json.dumps({"password": "drill-password-1"}),
        PREFIX + "instances/crs-pwfree01": json.dumps({"passwordFree": True}),
        PREFIX + "instances/crs-orders62": json.dumps({"password": "Orders-62-pass"}),
    }

    for name, value in seeds.items():
        try:
            client.create_secret(Name=name, SecretString=value)
            action = "created"
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=name, SecretString=value)
            action = "updated"
        print(f"  {action} {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
