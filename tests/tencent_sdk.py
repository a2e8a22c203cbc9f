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

import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
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
        # Redis 6.2: restored by clone only; second-level backup for 2 days, a gap 2 h to 1 h ago.
        {"redisId": "crs-sdk00062", "name": "orders-62", "region": REGION, "password": "Orders-62-pass",
         "type": 15, "tags": [{"key": "team", "value": "orders"}],
         "secondLevelBackup": {"startedSecsAgo": 172800, "missing": [{"fromSecsAgo": 7200, "toSecsAgo": 3600}]},
         "backups": [{"backupId": "1795600001-1165734322-153731238", "startTime": "2026-11-26 03:00:00"}]},
    ],
    "restoreDurationMs": 60000,
    "cloneDurationMs": 60000,
}


def beijing(secs_ago):
    """`YYYY-MM-DD HH:MM:SS` in Beijing time, Tencent's layout for CloneTime."""
    at = datetime.datetime.fromtimestamp(time.time() - secs_ago, datetime.timezone(datetime.timedelta(hours=8)))
    return at.strftime("%Y-%m-%d %H:%M:%S")


def clone_params(**extra):
    params = {"InstanceId": "crs-sdk00062", "GoodsNum": 1, "ZoneId": 100003, "BillingMode": 0, "Period": 1,
              "SecurityGroupIdList": ["sg-sandbox1"], "BackupId": "1795600001-1165734322-153731238",
              "VpcId": "vpc-sandbox1", "SubnetId": "subnet-sandbox1", "InstanceName": "orders-62-restored-202612010941",
              "Password": "Clone-pass-1", "VPort": 6379, "ProjectId": 0,
              "ResourceTags": [{"TagKey": "crs-restore:delivery", "TagValue": "msg_sdk"}]}
    params.update(extra)
    return params

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
     "good", ok(lambda m, ctx: expect(m.TotalCount == 5 and len(m.InstanceSet) == 5, f"{m.TotalCount} instances"))),
    ("one instance", "DescribeInstances", {"InstanceId": "crs-sdk00002"},
     "good", ok(lambda m, ctx: expect([i.NoAuth for i in m.InstanceSet] == [True], "NoAuth"))),
    ("instances beyond the documented Limit", "DescribeInstances", {"Limit": 1001},
     "good", error("InvalidParameter.InvalidParameter")),
    ("in-place restore of a Redis 6.2 instance", "RestoreInstance",
     {"InstanceId": "crs-sdk00062", "BackupId": "1795600001-1165734322-153731238", "Password": "Orders-62-pass"},
     "good", error("ResourceUnavailable.BackupSpecError")),
    ("instances by ids, with what a clone copies", "DescribeInstances",
     {"InstanceIds": ["crs-sdk00062", "crs-sdk00001"]},
     "good", ok(lambda m, ctx: expect(sorted((i.InstanceId, i.Type, i.BackupMode) for i in m.InstanceSet) ==
                                      [("crs-sdk00001", 2, "NormalLevelBackup"), ("crs-sdk00062", 15, "SecondLevelBackup")]
                                      and all(i.UniqSubnetId and i.ZoneId for i in m.InstanceSet),
                                      "ids, types, backup modes, subnets"))),
    ("instances by tag key and by tag", "DescribeInstances",
     {"TagKeys": ["team"], "InstanceTags": [{"TagKey": "team", "TagValue": "orders"}]},
     "good", ok(lambda m, ctx: expect([i.InstanceId for i in m.InstanceSet] == ["crs-sdk00062"]
                                      and m.InstanceSet[0].InstanceTags[0].TagValue == "orders", "tagged"))),
    ("security groups of an instance", "DescribeInstanceSecurityGroup", {"InstanceIds": ["crs-sdk00062"]},
     "good", ok(lambda m, ctx: expect(m.InstanceSecurityGroupsDetail[0].SecurityGroupDetails[0].SecurityGroupId
                                      == "sg-sandbox1", "security group"))),
    ("security groups without instance ids", "DescribeInstanceSecurityGroup", {},
     "good", error("MissingParameter")),
    ("price of a clone", "InquiryPriceCreateInstance",
     {"TypeId": 15, "MemSize": 1024, "GoodsNum": 1, "Period": 1, "BillingMode": 0, "ZoneId": 100003,
      "RedisShardNum": 1, "RedisReplicasNum": 1},
     "good", ok(lambda m, ctx: expect(m.AmountUnit == "pent" and m.HighPrecisionPrice == 20.0, f"{m.Price}"))),
    ("price of a size Tencent does not sell", "InquiryPriceCreateInstance", {"TypeId": 15, "MemSize": 1000},
     "good", error("InvalidParameterValue.SpecNotExist")),
    ("second-level backup of a covered second", "DescribeSecondLevelBackupInfo",
     lambda ctx: {"InstanceId": "crs-sdk00062", "BackupTimestamp": int(time.time()) - 1800},
     "good", ok(lambda m, ctx: expect(m.BackupId and len(m.MissingTimestamps) == 1
                                      and m.StartTimestamp < m.BackupTimestamp, "coverage"))),
    ("second-level backup of an instance without it", "DescribeSecondLevelBackupInfo",
     {"InstanceId": "crs-sdk00001", "BackupTimestamp": 1795600000},
     "good", error("FailedOperation.UnSupportError")),
    ("a clone with a password the rules refuse", "CloneInstances", clone_params(Password="short"),
     "good", error("InvalidParameterValue.PasswordRuleError")),
    ("a clone into an unknown security group", "CloneInstances", clone_params(SecurityGroupIdList=["sg-nope"]),
     "good", error("InvalidParameterValue.SecurityGroupIdsNotExists")),
    ("a clone to a second in a backup gap", "CloneInstances",
     lambda ctx: clone_params(BackupId=ctx["second-level backup of a covered second"].BackupId, CloneTime=beijing(5400)),
     "good", error("InvalidParameterValue.CheckNotPass")),
    ("a clone from a backup", "CloneInstances", clone_params(),
     "good", ok(lambda m, ctx: expect(len(m.InstanceIds) == 1 and m.InstanceIds[0].startswith("crs-"), "one clone"))),
    ("a clone to a covered second", "CloneInstances",
     lambda ctx: clone_params(BackupId=ctx["second-level backup of a covered second"].BackupId, CloneTime=beijing(1800)),
     "good", ok()),
    ("the new clone is being created", "DescribeInstances",
     lambda ctx: {"InstanceIds": ctx["a clone from a backup"].InstanceIds},
     "good", ok(lambda m, ctx: expect([(i.Status, i.InstanceTags[0].TagKey) for i in m.InstanceSet]
                                      == [(0, "crs-restore:delivery")], "status 0 and tagged"))),
    ("destroying the new clone", "DestroyPostpaidInstance",
     lambda ctx: {"InstanceId": ctx["a clone from a backup"].InstanceIds[0]},
     "good", ok(lambda m, ctx: expect(isinstance(m.TaskId, int), "a task id"))),
    ("the destroyed clone is in the recycle bin", "DescribeInstances",
     lambda ctx: {"InstanceIds": ctx["a clone from a backup"].InstanceIds},
     "good", ok(lambda m, ctx: expect([i.Status for i in m.InstanceSet] == [-2] and m.InstanceSet[0].OfflineTime,
                                      "isolated, with its offline time"))),
    ("destroying it twice", "DestroyPostpaidInstance",
     lambda ctx: {"InstanceId": ctx["a clone from a backup"].InstanceIds[0]},
     "good", error("ResourceUnavailable.InstanceStatusError")),
    ("cleaning up a running instance", "CleanUpInstance", {"InstanceId": "crs-sdk00062"},
     "good", error("ResourceUnavailable.InstanceStatusAbnormal")),
    ("cleaning up the destroyed clone", "CleanUpInstance",
     lambda ctx: {"InstanceId": ctx["a clone from a backup"].InstanceIds[0]},
     "good", ok()),
    ("the cleaned-up clone is gone", "DescribeInstances",
     lambda ctx: {"InstanceIds": ctx["a clone from a backup"].InstanceIds},
     "good", ok(lambda m, ctx: expect(m.TotalCount == 0, "gone"))),
    ("destroying an unknown instance", "DestroyPostpaidInstance", {"InstanceId": "crs-nosuch00"},
     "good", error("ResourceNotFound.InstanceNotExists")),
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
