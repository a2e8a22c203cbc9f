"""Drives a real `crs-sandbox` process with Tencent's official Python SDK (API 3.0).

Run by `tests/tencent_sdk.rs` (so by `cargo test` and `make test`) as
`python tests/tencent_sdk.py PATH/TO/crs-sandbox`; exits non-zero when any case fails.

Every case in CASES calls one action through the SDK's own typed client method, over plain
HTTP on 127.0.0.1, and checks what an SDK user would see:
  * a success answer must come back as the SDK's response model (no TencentCloudSDKException),
    and every field the sandbox sent must be declared by that model in models.py, with the JSON
    type models.py declares (`:type TaskId: int` means an integer, not "375074"), recursively;
  * an error answer must be raised as TencentCloudSDKException with the expected code (the SDK
    reads `Response.Error` only under exactly `Content-Type: application/json`).

To cover a new sandbox action, add its rows to CASES: a success row and its error rows.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import warnings

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.redis.v20180412 import models, redis_client

SECRET_ID = "AKIDsdkTEST000000000000000000000000"
SECRET_KEY = "sdk-test-secret-key-0000000000000"
TEMP_ID = "AKIDsdkTEMP000000000000000000000000"
TEMP_KEY = "sdk-temp-secret-key-0000000000000"
TOKEN = "sdk-session-token"
PASSWORD = "12D3E@!r5ed +&="
REGION = "ap-guangzhou"

SEED = {
    "credentials": [
        {"secretId": SECRET_ID, "secretKey": SECRET_KEY},
        {"secretId": TEMP_ID, "secretKey": TEMP_KEY, "token": TOKEN},
    ],
    "instances": [
        {
            "redisId": "crs-sdk00001",
            "name": "orders-cache",
            "region": REGION,
            "password": PASSWORD,
            "backups": [
                {"backupId": "154572601-1165734322-153731238", "startTime": "2026-11-25 03:00:00"},
                {"backupId": "154572601-1165734322-153731239", "startTime": "2026-11-26 03:00:00",
                 "backupType": "manualBackupInstance"},
                {"backupId": "b-locked", "startTime": "2026-11-24 03:00:00", "locked": 1},
                {"backupId": "b-expired", "startTime": "2026-11-01 03:00:00", "status": -1},
            ],
        },
        {
            "redisId": "crs-sdk00002",
            "name": "sessions-nopass",
            "region": REGION,
            "backups": [{"backupId": "b-nopass", "startTime": "2026-11-26 04:00:00"}],
        },
        {"redisId": "crs-sdk00005", "name": "spare", "region": REGION, "password": "p",
         "backups": [{"backupId": "b-locked", "startTime": "2026-11-24 03:00:00", "locked": 1, "status": 1},
                     {"backupId": "b-expired", "startTime": "2026-11-01 03:00:00", "status": -1}]},
        {"redisId": "crs-sdk00003", "name": "isolated", "region": REGION, "password": "p", "status": -2,
         "backups": [{"backupId": "b-iso", "startTime": "2026-11-26 04:00:00"}]},
        {"redisId": "crs-sdk00004", "name": "shanghai", "region": "ap-shanghai", "password": "p",
         "backups": [{"backupId": "b-sh", "startTime": "2026-11-26 04:00:00"}]},
    ],
    "restoreDurationMs": 60000,
}

# The clients a case can use: all point at the sandbox, differing only in who they claim to be.
CLIENTS = {
    "good": (SECRET_ID, SECRET_KEY, None),
    "temporary": (TEMP_ID, TEMP_KEY, TOKEN),
    "wrong-key": (SECRET_ID, "not-the-secret-key", None),
    "unknown-id": ("AKIDnobodyHasThisId0000000000000000", SECRET_KEY, None),
    "wrong-token": (TEMP_ID, TEMP_KEY, "someone-elses-token"),
}


def ok(check=None):
    """A success: the answer parses into the model; `check(model, ctx)` asserts more."""
    return ("ok", check)


def error(code):
    """An error: TencentCloudSDKException with exactly this code."""
    return ("error", code)


def task_id_of(name):
    return lambda ctx: {"TaskId": ctx[name].TaskId}


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


# (name, action, request params or a function of earlier results, client, expectation).
# Rows run in order; `ctx[name]` is the model a successful earlier row returned.
CASES = [
    ("restore with a wrong password", "RestoreInstance",
     {"InstanceId": "crs-sdk00001", "BackupId": "154572601-1165734322-153731238", "Password": "wrong"},
     "good", error("InvalidParameterValue.PasswordError")),
    ("restore starts a task", "RestoreInstance",
     {"InstanceId": "crs-sdk00001", "BackupId": "154572601-1165734322-153731238", "Password": PASSWORD},
     "good", ok(lambda m, ctx: expect(isinstance(m.TaskId, int) and m.TaskId > 0, f"TaskId {m.TaskId!r}"))),
    ("restore while the instance is locked", "RestoreInstance",
     {"InstanceId": "crs-sdk00001", "BackupId": "154572601-1165734322-153731238", "Password": PASSWORD},
     "good", error("ResourceUnavailable.InstanceLockedError")),
    ("restore of an unknown instance", "RestoreInstance",
     {"InstanceId": "crs-nosuch00", "BackupId": "b-nopass", "Password": PASSWORD},
     "good", error("ResourceNotFound.InstanceNotExists")),
    ("restore of an unknown backup", "RestoreInstance",
     {"InstanceId": "crs-sdk00005", "BackupId": "no-such-backup", "Password": "p"},
     "good", error("InvalidParameterValue.BackupNotExists")),
    ("restore from a locked backup", "RestoreInstance",
     {"InstanceId": "crs-sdk00005", "BackupId": "b-locked", "Password": "p"},
     "good", error("ResourceUnavailable.BackupLockedError")),
    ("restore from an expired backup", "RestoreInstance",
     {"InstanceId": "crs-sdk00005", "BackupId": "b-expired", "Password": "p"},
     "good", error("ResourceUnavailable.BackupStatusAbnormal")),
    ("restore of an isolated instance", "RestoreInstance",
     {"InstanceId": "crs-sdk00003", "BackupId": "b-iso", "Password": "p"},
     "good", error("ResourceUnavailable.InstanceStatusAbnormal")),
    ("restore of an instance in another region", "RestoreInstance",
     {"InstanceId": "crs-sdk00004", "BackupId": "b-sh", "Password": "p"},
     "good", error("ResourceNotFound.InstanceNotExists")),
    ("password-free restore with temporary credentials", "RestoreInstance",
     {"InstanceId": "crs-sdk00002", "BackupId": "b-nopass"},
     "temporary", ok()),
    ("task of the started restore", "DescribeTaskInfo", task_id_of("restore starts a task"),
     "good", ok(lambda m, ctx: expect(m.InstanceId == "crs-sdk00001" and m.Status in ("preparing", "running"),
                                      f"task {m.InstanceId} {m.Status}"))),
    ("an unknown task", "DescribeTaskInfo", {"TaskId": 999999999},
     "good", error("InvalidParameter.InvalidParameter")),
    ("backups of an instance", "DescribeInstanceBackups", {"InstanceId": "crs-sdk00001", "Limit": 100},
     "good", ok(lambda m, ctx: expect(m.TotalCount == 4 and len(m.BackupSet) == 4, f"{m.TotalCount} backups"))),
    ("a page of backups", "DescribeInstanceBackups", {"InstanceId": "crs-sdk00001", "Limit": 1, "Offset": 1},
     "good", ok(lambda m, ctx: expect(len(m.BackupSet) == 1, f"{len(m.BackupSet)} backups"))),
    ("backups beyond the documented Limit", "DescribeInstanceBackups", {"InstanceId": "crs-sdk00001", "Limit": 101},
     "good", error("InvalidParameter.InvalidParameter")),
    ("backups of an unknown instance", "DescribeInstanceBackups", {"InstanceId": "crs-nosuch00"},
     "good", error("ResourceNotFound.InstanceNotExists")),
    ("instances at the documented maximum Limit", "DescribeInstances", {"Limit": 1000},
     "good", ok(lambda m, ctx: expect(m.TotalCount == 4 and len(m.InstanceSet) == 4, f"{m.TotalCount} instances"))),
    ("one instance", "DescribeInstances", {"InstanceId": "crs-sdk00002"},
     "good", ok(lambda m, ctx: expect([i.NoAuth for i in m.InstanceSet] == [True], "NoAuth"))),
    ("instances beyond the documented Limit", "DescribeInstances", {"Limit": 1001},
     "good", error("InvalidParameter.InvalidParameter")),
    ("a request signed with the wrong key", "DescribeInstances", {},
     "wrong-key", error("AuthFailure.SignatureFailure")),
    ("a request from an unknown SecretId", "DescribeInstances", {},
     "unknown-id", error("AuthFailure.SecretIdNotFound")),
    ("temporary credentials with the wrong token", "DescribeInstances", {},
     "wrong-token", error("AuthFailure.TokenFailure")),
]

SCALARS = {"int": (int,), "str": (str,), "float": (int, float), "bool": (bool,)}
TYPE_LINE = re.compile(r":type (\w+): (.+)")


def declared_types(model_class):
    """Field name -> declared type, from the `:type X: T` lines models.py documents."""
    return dict(TYPE_LINE.findall(model_class.__init__.__doc__ or ""))


def check_value(value, declared, path, problems):
    declared = declared.strip()
    if declared.startswith("list of "):
        if not isinstance(value, list):
            problems.append(f"{path}: {value!r} is not a list ({declared})")
            return
        for i, item in enumerate(value):
            check_value(item, declared[len("list of "):], f"{path}[{i}]", problems)
    elif declared in SCALARS:
        # bool is an int in Python; JSON true is never an integer.
        if isinstance(value, bool) and declared != "bool" or not isinstance(value, SCALARS[declared]):
            problems.append(f"{path}: {value!r} is {type(value).__name__}, models.py declares {declared}")
    elif isinstance(getattr(models, declared, None), type):
        check_object(value, getattr(models, declared), path, problems)
    else:
        problems.append(f"{path}: models.py type {declared!r} is not known to this test")


def check_object(value, model_class, path, problems):
    if not isinstance(value, dict):
        problems.append(f"{path}: {value!r} is not an object ({model_class.__name__})")
        return
    types = declared_types(model_class)
    for key, item in value.items():
        if key not in types:
            problems.append(f"{path}.{key}: not a field of {model_class.__name__} in models.py")
        elif item is not None:
            check_value(item, types[key], f"{path}.{key}", problems)


def start_sandbox(binary, workdir):
    seed = os.path.join(workdir, "seed.json")
    with open(seed, "w", encoding="utf-8") as f:
        json.dump(SEED, f)
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--seed", seed],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "sandbox.log"), "w"),
                            text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://(127\.0\.0\.1:\d+)", line)
    if not match:
        proc.kill()
        sys.exit(f"crs-sandbox did not print its address (got {line!r}); see {workdir}/sandbox.log")
    return proc, match.group(1)


def client(endpoint, who):
    secret_id, secret_key, token = CLIENTS[who]
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=10))
    c = redis_client.RedisClient(credential.Credential(secret_id, secret_key, token), REGION, profile)
    # Keep the raw answer too, to check it against models.py field by field.
    raw = []
    call = c.call
    c.call = lambda *args, **kwargs: raw.append(call(*args, **kwargs)) or raw[-1]
    return c, raw


def run_case(endpoint, case, ctx):
    name, action, params, who, (kind, detail) = case
    if callable(params):
        params = params(ctx)
    request = getattr(models, action + "Request")()
    request.from_json_string(json.dumps(params))
    c, raw = client(endpoint, who)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            model = getattr(c, action)(request)
    except TencentCloudSDKException as e:
        if kind == "error" and e.get_code() == detail:
            return []
        return [f"raised {e.get_code()}: {e.get_message()} (expected {kind} {detail or ''})"]
    if kind == "error":
        return [f"the SDK returned {model.to_json_string()} instead of raising {detail}"]
    problems = []
    check_object(json.loads(raw[-1]).get("Response"), getattr(models, action + "Response"), "Response", problems)
    if not problems and detail:
        try:
            detail(model, ctx)
        except AssertionError as e:
            problems.append(str(e))
    ctx[name] = model
    return problems


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tencent_sdk.py PATH/TO/crs-sandbox")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="crs-sdk-") as workdir:
        proc, endpoint = start_sandbox(sys.argv[1], workdir)
        try:
            ctx = {}
            for case in CASES:
                problems = run_case(endpoint, case, ctx)
                status = "ok" if not problems else "FAILED"
                print(f"{status}: {case[1]}: {case[0]}")
                for problem in problems:
                    print(f"    {problem}")
                failed += bool(problems)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(f"{len(CASES) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
