#!/usr/bin/env python3
"""The checks behind `make package` and `make package-test` (run with .venv's python).

usage:
  package_checks.py archs TEMPLATE
      print the template's default Architecture and the allowed ones (comma-separated)
  package_checks.py zip BUILD_DIR ARCH OUT.zip
      zip the function's build the way `sam deploy` does; print ARCH, bootstrap bytes, zip bytes, md5
  package_checks.py elf BOOTSTRAP ARCH
      architecture, loader, libraries and glibc symbol versions against Amazon Linux 2023
  package_checks.py iam TEMPLATE
      the SAM transform's Function URL permissions; the role's actions against the code's AWS calls
  package_checks.py seed MOTO_ENDPOINT TABLE
      create the idempotency table in moto
  package_checks.py invoke --label L --rie RIE [--rie-prefix CMD] --bootstrap CMD --task-dir DIR
                          --sandbox URL --env-file FN_ENV.json --log FILE [--report FILE]
      the bootstrap under AWS's Runtime Interface Emulator: a signed restore, a bad signature, a
      drill; the signing key the function knows is in $PACKAGE_TEST_SIGNING_KEY
  package_checks.py init --label L --rie RIE --bootstrap CMD --task-dir DIR --env-file F --runs N --log-dir D
      N cold starts under the emulator; its init figure p50/min/max (tab-separated into --report)
  package_checks.py extract ZIP DIR
      unzip a package as Lambda does (file modes from the zip); check that bootstrap is executable

Every check prints one `PASS <name>: ...` or `FAIL <name>: ...` line; the exit status is 1 if any
check failed. Nothing here talks to anything but 127.0.0.1.
"""

import base64
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Amazon Linux 2023, the OS of the provided.al2023 runtime, ships glibc 2.34.
AL2023_GLIBC = (2, 34)
# The shared libraries provided.al2023 has for a custom runtime's bootstrap (glibc and libgcc).
AL2023_LIBS = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
}
ELF = {
    "x86_64": {"machine": "Advanced Micro Devices X86-64", "loader": "/lib64/ld-linux-x86-64.so.2"},
    "arm64": {"machine": "AArch64", "loader": "/lib/ld-linux-aarch64.so.1"},
}

failures = 0


def result(ok: bool, name: str, detail: str) -> bool:
    global failures
    if not ok:
        failures += 1
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    return ok


def load_template(path: str) -> dict:
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(Path(path).read_text())


# --- archs / zip -------------------------------------------------------------------------------


def cmd_archs(template: str) -> None:
    param = load_template(template)["Parameters"]["Architecture"]
    print(param["Default"], ",".join(param["AllowedValues"]))


def function_code_dirs(build_dir: Path) -> list[Path]:
    """The CodeUri directories of the functions in a `sam build` output."""
    built = load_template(str(build_dir / "template.yaml"))
    dirs = []
    for resource in built["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            dirs.append(build_dir / resource["Properties"]["CodeUri"])
    return dirs


def cmd_zip(build_dir: str, arch: str, out: str) -> None:
    # SAM's own zip function and checksum, as `sam deploy` (sam package) applies them to a
    # function's build directory: the zip is byte for byte what it uploads, under this md5.
    from samcli.lib.package.utils import make_zip_with_lambda_permissions
    from samcli.lib.utils.hash import dir_checksum

    dirs = function_code_dirs(Path(build_dir))
    if len(dirs) != 1:
        sys.exit(f"expected one function in {build_dir}/template.yaml, found {len(dirs)}")
    code = dirs[0]
    bootstrap = code / "bootstrap"
    if not bootstrap.is_file():
        sys.exit(f"{bootstrap} is missing: sam build did not produce a bootstrap")
    out_path = Path(out)
    out_path.unlink(missing_ok=True)
    made = make_zip_with_lambda_permissions(str(out_path.with_suffix("")), str(code))
    if Path(made) != out_path:
        os.replace(made, out_path)
    md5 = dir_checksum(str(code), followlinks=True)
    print(f"{arch}\t{bootstrap.stat().st_size}\t{out_path.stat().st_size}\t{md5}")


def cmd_extract(zip_path: str, dest: str) -> None:
    import shutil
    import stat
    import zipfile

    out = Path(dest)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        for info in zf.infolist():
            target = zf.extract(info, out)
            mode = info.external_attr >> 16
            if mode:
                os.chmod(target, stat.S_IMODE(mode))
    bootstrap = out / "bootstrap"
    mode = bootstrap.stat().st_mode if bootstrap.exists() else 0
    result(
        bootstrap.is_file() and bool(mode & 0o001) and bool(mode & 0o004),
        f"{Path(zip_path).name} layout",
        f"{', '.join(names)}; bootstrap mode {stat.filemode(mode) if mode else 'MISSING'}"
        + ("" if mode & 0o005 == 0o005 else " (Lambda runs it as another user: it must be world-readable and executable)"),
    )


# --- elf -----------------------------------------------------------------------------------------


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True, text=True).stdout


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def cmd_elf(bootstrap: str, arch: str) -> None:
    want = ELF[arch]
    header = readelf("-h", bootstrap)
    machine = re.search(r"Machine:\s+(.+)", header).group(1).strip()
    elf_class = re.search(r"Class:\s+(\S+)", header).group(1)
    result(
        machine == want["machine"] and elf_class == "ELF64",
        f"{arch} ELF architecture",
        f"{elf_class} {machine}" + ("" if machine == want["machine"] else f" (Lambda {arch} needs {want['machine']})"),
    )

    program = readelf("-l", bootstrap)
    loader = re.search(r"Requesting program interpreter: ([^\]]+)\]", program)
    loader = loader.group(1) if loader else "none (static)"
    result(loader in (want["loader"], "none (static)"), f"{arch} program loader", loader)

    dynamic = readelf("-d", bootstrap)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    extra = sorted(set(needed) - AL2023_LIBS)
    result(
        not extra,
        f"{arch} shared libraries",
        ", ".join(needed) + (f"; not on provided.al2023: {', '.join(extra)}" if extra else " (all on provided.al2023)"),
    )

    # The versions the binary needs (.gnu.version_r), and which symbols need the newest one.
    versions = sorted(set(re.findall(r"Name: GLIBC_([0-9.]+)", readelf("-V", bootstrap))), key=version_tuple)
    if not versions:
        result(loader == "none (static)", f"{arch} glibc symbol versions", "no GLIBC_ version needed")
        return
    newest = versions[-1]
    symbols = sorted(
        set(re.findall(r"\s(\w+)@GLIBC_" + re.escape(newest) + r"\b", readelf("--dyn-syms", bootstrap)))
    )
    limit = ".".join(map(str, AL2023_GLIBC))
    result(
        version_tuple(newest) <= AL2023_GLIBC,
        f"{arch} glibc symbol versions <= {limit} (Amazon Linux 2023)",
        f"newest GLIBC_{newest} (for {', '.join(symbols[:6]) or '?'}{' ...' if len(symbols) > 6 else ''}); "
        f"needs {', '.join(versions)}",
    )


# --- iam -----------------------------------------------------------------------------------------

# Crates whose IAM service prefix is not the crate's name.
IAM_PREFIX = {
    "cloudwatchlogs": "logs",
    "sfn": "states",
    "eventbridge": "events",
    "cognitoidentityprovider": "cognito-idp",
    "elasticloadbalancingv2": "elasticloadbalancing",
    "sesv2": "ses",
}
# API operations whose IAM action has another name (Service Authorization Reference).
IAM_ACTION = {
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
}
# What the role grants for Lambda itself rather than for a call in the code: delivering the
# function's stdout to its log group (the template creates the group, so no CreateLogGroup).
PLATFORM_ACTIONS = {
    "logs:CreateLogStream": "Lambda writes the function's output to its log group",
    "logs:PutLogEvents": "Lambda writes the function's output to its log group",
}


def blank_comments_and_literals(src: str) -> str:
    """Rust source with comments and string/char literals replaced by spaces (offsets kept)."""
    out = list(src)
    i, n = 0, len(src)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif (m := re.match(r'b?r(#*)"', src[i : i + 260])) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = src.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            blank(i, j)
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^'\\])'", src[i : i + 12])):
            blank(i, i + m.end())
            i += m.end()
        else:
            i += 1
    return "".join(out)


def strip_test_code(code: str) -> str:
    """Drops `#[cfg(test)]` items (unit test modules, test helpers): they never deploy."""
    while (m := re.search(r"#\[cfg\(test\)\]", code)) is not None:
        start = m.start()
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            end = semi + 1 if semi >= 0 else len(code)
        else:
            depth, j = 0, brace
            while j < len(code):
                if code[j] == "{":
                    depth += 1
                elif code[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            end = j + 1
        code = code[:start] + " " * (end - start) + code[end:]
    return code


def sdk_operations() -> dict[str, dict[str, str]]:
    """{service crate suffix: {operation method name: API name}} for the AWS SDK crates that
    crs-restore itself (not its dev-dependencies) depends on, read from their sources."""
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    root = next(p for p in meta["packages"] if p["name"] == "crs-restore" and p["source"] is None)
    wanted = {
        d["name"]
        for d in root["dependencies"]
        if d["name"].startswith("aws-sdk-") and d.get("kind") in (None, "normal")
    }
    # The resolved version of each (the resolve graph names the exact package).
    node = next(n for n in meta["resolve"]["nodes"] if n["id"] == root["id"])
    ops: dict[str, dict[str, str]] = {}
    for dep in node["deps"]:
        pkg = packages[dep["pkg"]]
        if pkg["name"] not in wanted:
            continue
        service = pkg["name"].removeprefix("aws-sdk-")
        opdir = Path(pkg["manifest_path"]).parent / "src" / "operation"
        table = {}
        for f in opdir.glob("*.rs"):
            named = re.search(r'Metadata::new\(\s*"(\w+)"', f.read_text())
            if named:
                table[f.stem] = named.group(1)
        ops[service] = table
    return ops


def code_aws_actions() -> dict[str, set[str]]:
    """{IAM action: files} for every AWS SDK operation the deployed code calls, in src/ outside
    src/bin/ (other binaries) and outside #[cfg(test)] code and files. An operation call is its fluent
    builder, `.put_item()` (no arguments; the builder may be sent later): counted in a file that
    names the service's crate (`aws_sdk_dynamodb`), and anywhere for a multi-word operation name,
    which nothing else is likely to use (a client handed over without its type named)."""
    ops = sdk_operations()
    sources = {p: blank_comments_and_literals(p.read_text()) for p in sorted((ROOT / "src").rglob("*.rs"))}
    # Files that are test modules themselves (`#[cfg(test)] mod tests;`).
    test_files = set()
    for path, code in sources.items():
        home = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.with_suffix("")
        for name in re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code):
            test_files |= {home / f"{name}.rs", home / name / "mod.rs"}
    found: dict[str, set[str]] = {}
    for path, code in sources.items():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("src/bin/") or path in test_files:
            continue
        code = strip_test_code(code)
        referenced = {s.replace("_", "-") for s in re.findall(r"\baws_sdk_(\w+)", code)}
        for method in set(re.findall(r"\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)", code)):
            for service, table in ops.items():
                if method in table and (service in referenced or "_" in method):
                    api = table[method]
                    prefix = IAM_PREFIX.get(service, service)
                    action = f"{prefix}:{IAM_ACTION.get((prefix, api), api)}"
                    found.setdefault(action, set()).add(rel)
    return found


def transformed_template(template: str) -> dict:
    """The template after the SAM transform, as `sam validate` runs it (offline)."""
    from samcli.lib.translate.sam_template_validator import SamTemplateValidator
    from samcli.yamlhelper import yaml_parse

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    validator = SamTemplateValidator(load_template(template), NoManagedPolicies(), region="us-east-1")
    return yaml_parse(validator.get_translated_template_if_valid())


def statements(document) -> list[dict]:
    """The statements of a policy document, both branches of any Fn::If included."""
    out = []

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "Fn::If" in node:
                walk(node["Fn::If"][1:])
            elif "Effect" in node:
                out.append(node)

    walk(document.get("Statement", []))
    return out


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def cmd_iam(template: str) -> None:
    out = transformed_template(template)
    resources = out["Resources"]

    # 1. The public Function URL: since October 2025 a URL with AuthType NONE needs both
    #    lambda:InvokeFunctionUrl and lambda:InvokeFunction (the latter only via the URL).
    urls = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::Url"}
    perms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    for name, url in urls.items():
        props = url["Properties"]
        target = props["TargetFunctionArn"]
        mine = [p for p in perms if p.get("FunctionName") == target and p.get("Principal") == "*"]
        if props.get("AuthType") != "NONE":
            result(True, f"Function URL {name} permissions", f"AuthType {props.get('AuthType')}: IAM-authorized")
            continue
        url_perm = [
            p for p in mine if p.get("Action") == "lambda:InvokeFunctionUrl" and p.get("FunctionUrlAuthType") == "NONE"
        ]
        invoke_perm = [
            p for p in mine if p.get("Action") == "lambda:InvokeFunction" and p.get("InvokedViaFunctionUrl") is True
        ]
        open_invoke = [
            p for p in mine if p.get("Action") == "lambda:InvokeFunction" and p.get("InvokedViaFunctionUrl") is not True
        ]
        result(
            bool(url_perm),
            f"Function URL {name} grants public lambda:InvokeFunctionUrl",
            "granted to * with FunctionUrlAuthType NONE" if url_perm else "missing: every request would get 403",
        )
        result(
            bool(invoke_perm) and not open_invoke,
            f"Function URL {name} grants public lambda:InvokeFunction only with lambda:InvokedViaFunctionUrl",
            "granted to * only via the Function URL"
            if invoke_perm and not open_invoke
            else ("granted to * without InvokedViaFunctionUrl: anyone may Invoke directly" if open_invoke
                  else "missing: since the 2025 permission change every request would get 403"),
        )
    if not urls:
        result(False, "Function URL", "the transform produced no AWS::Lambda::Url")

    # 2. The function's role against the AWS calls in the code.
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    code = code_aws_actions()
    for fname, fn in functions.items():
        role_ref = fn["Properties"]["Role"]
        role_id = role_ref["Fn::GetAtt"][0] if isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref else None
        role = resources.get(role_id) if role_id else None
        if role is None:
            result(False, f"{fname} role", f"cannot follow Role {role_ref!r} to a role in the template")
            continue
        managed = role["Properties"].get("ManagedPolicyArns") or []
        granted: dict[str, list[dict]] = {}
        for policy in role["Properties"].get("Policies", []):
            for st in statements(policy["PolicyDocument"]):
                if st.get("Effect") == "Allow":
                    for action in as_list(st.get("Action", [])):
                        granted.setdefault(action, []).append(st)
        platform = {a: why for a, why in PLATFORM_ACTIONS.items() if a in granted}
        # kms:Decrypt is used by Secrets Manager on the function's behalf, for secrets under a
        # customer-managed key: justified only with a kms:ViaService secretsmanager condition.
        if "kms:Decrypt" in granted and "secretsmanager:GetSecretValue" in code:
            via = all(
                "secretsmanager." in json.dumps(st.get("Condition", {})) and "kms:ViaService" in json.dumps(st)
                for st in granted["kms:Decrypt"]
            )
            if via:
                platform["kms:Decrypt"] = "Secrets Manager decrypts the secrets (customer key, kms:ViaService)"
        wildcard = sorted(a for a in granted if "*" in a)
        role_code_actions = set(granted) - set(platform)
        missing = sorted(set(code) - role_code_actions)
        extra = sorted(role_code_actions - set(code))
        print(f"     code calls ({fname}):")
        for action in sorted(code):
            print(f"       {action:36} {', '.join(sorted(code[action]))}")
        print(f"     role {role_id} grants besides: " + "; ".join(f"{a} ({w})" for a, w in sorted(platform.items())))
        detail = f"{len(code)} actions from the code = {len(role_code_actions)} granted"
        if missing:
            detail = "role lacks " + ", ".join(f"{a} (called in {', '.join(sorted(code[a]))})" for a in missing)
        if extra:
            detail += ("; " if missing else "") + "role grants " + ", ".join(extra) + " that no code calls"
        if wildcard:
            detail += "; wildcard actions " + ", ".join(wildcard)
        if managed:
            detail += "; managed policies " + ", ".join(map(str, managed)) + " cannot be checked"
        result(
            not (missing or extra or wildcard or managed),
            f"{fname} role {role_id} actions equal the AWS calls in the code",
            detail,
        )


# --- seed ----------------------------------------------------------------------------------------


def cmd_seed(endpoint: str, table: str) -> None:
    import boto3

    if not endpoint.startswith("http://127.0.0.1:"):
        sys.exit(f"refusing non-loopback endpoint {endpoint!r}")
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    # The table of template.yaml: a string hash key `id`, TTL on `expiration`.
    client.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"AttributeName": "expiration", "Enabled": True}
    )


# --- invoke --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=body, method=method, headers={"content-type": "application/json"})
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sandbox_state(sandbox: str) -> dict:
    status, body = http("GET", f"{sandbox}/_sandbox/state")
    if status != 200:
        raise RuntimeError(f"sandbox state: HTTP {status}")
    return json.loads(body)


def restores(state: dict, redis_id: str | None = None) -> int:
    """RestoreInstance calls the sandbox accepted, for one instance or for all."""
    counts = state["restoresStarted"]
    return counts.get(redis_id, 0) if redis_id else sum(counts.values())


def function_url_event(body: str, headers: dict) -> dict:
    """events/function-url-restore.json with another body and signature headers."""
    event = json.loads((ROOT / "events" / "function-url-restore.json").read_text())
    event["body"] = body
    event["isBase64Encoded"] = False
    event["headers"].update(headers)
    event["headers"]["content-length"] = str(len(body.encode()))
    now = datetime.now(timezone.utc)
    event["requestContext"]["timeEpoch"] = int(now.timestamp() * 1000)
    event["requestContext"]["requestId"] = secrets.token_hex(16)
    return event


def signed_headers(key: str, body: str) -> dict:
    # Signed by the Standard Webhooks reference library, not by our own signer.
    from standardwebhooks.webhooks import Webhook

    msg_id = "msg_pkgtest_" + secrets.token_hex(8)
    now = datetime.now(timezone.utc)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(key).sign(msg_id, now, body),
    }


class Rie:
    """AWS's Runtime Interface Emulator running one bootstrap, on loopback ports of its own."""

    def __init__(self, args) -> None:
        self.port = free_port()
        self.api_port = free_port()
        self.log_path = Path(args.log)
        cmd = [
            *shlex.split(args.rie_prefix or ""),
            os.path.abspath(args.rie),
            # Its defaults: 0.0.0.0:8080 for invocations, 127.0.0.1:9001 for the runtime API.
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{self.api_port}",
            *shlex.split(args.bootstrap),
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(json.loads(Path(args.env_file).read_text()))
        self.log = open(self.log_path, "w")
        self.log.write("$ " + shlex.join(cmd) + "\n")
        self.log.flush()
        self.proc = subprocess.Popen(
            cmd,
            cwd=args.task_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the RIE and the bootstrap
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self.proc.returncode}; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the emulator did not listen on 127.0.0.1:{self.port}; see {self.log_path}")

    def invoke(self, event: dict, timeout: float) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations"
        return http("POST", url, json.dumps(event).encode(), timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def failure(self) -> str:
        """Why the runtime failed, from the emulator's log (e.g. `signal: illegal instruction`)."""
        self.log.flush()
        found = re.findall(r"Process runtime-\d+ exited: (.+)|Init failed .*error=([^\n]+?)(?: InvokeID=.*)?$", self.output(), re.M)
        return "; ".join(dict.fromkeys(a or b for a, b in found)) or "no runtime error in its log"


def http_answer(rie: Rie, label: str, name: str, status: int, raw: bytes) -> tuple[int | None, dict | None]:
    """The Function URL response inside an RIE answer: (statusCode, parsed body)."""
    if status != 200:
        result(False, f"{label} {name}", f"the emulator answered HTTP {status} {raw[:200]!r}: {rie.failure()}")
        return None, None
    try:
        envelope = json.loads(raw)
        return envelope.get("statusCode"), json.loads(envelope.get("body") or "null")
    except (ValueError, AttributeError) as e:
        result(False, f"{label} {name}", f"not a Function URL response ({e}): {raw[:300]!r}")
        return None, None


def init_durations(log: str) -> list[str]:
    """The emulator's init phase figures: `INIT REPORT(durationMs: ...)`, from INIT START (the
    bootstrap is started) to the runtime's first /next. (The `Init Duration` of its REPORT line
    is not that: it stays near 0.1 ms whatever the bootstrap does.)"""
    return [f"{float(ms):.2f}" for ms in re.findall(r"INIT REPORT\(durationMs: ([0-9.]+)\)", log)]


def cmd_invoke(args) -> None:
    label = args.label
    started = time.monotonic()
    try:
        rie = Rie(args)
    except RuntimeError as e:
        result(False, f"{label} emulator start", str(e))
        return
    try:
        invocations(args, rie)
    except Exception as e:  # a check that cannot run is a failed check, with the reason
        result(False, f"{label} invocations", f"{type(e).__name__}: {e}")
    finally:
        rie.stop()
    out = rie.output()
    inits = init_durations(out)
    print(
        f"     {label}: emulator's init (INIT REPORT) {inits[0] + ' ms' if inits else 'not reported'}; "
        f"{time.monotonic() - started:.1f} s in all; log {os.path.relpath(rie.log_path, ROOT)}",
        flush=True,
    )
    if args.report and inits:
        with open(args.report, "a") as f:
            f.write(f"{label}\t{inits[0]}\n")


def invocations(args, rie: Rie) -> None:
    """The three invocations of `invoke`, each with its verdict."""
    label, timeout = args.label, float(args.timeout)
    key = os.environ["PACKAGE_TEST_SIGNING_KEY"]
    restore_body = json.dumps(
        {
            "redisId": "crs-izbob1wh",
            "backupId": "e824aecc-ef5e-11e6-a2c7-525400082493",
            "region": "ap-guangzhou",
            "reason": f"make package-test {label}",
        }
    )

    # 1. A signed restore: 202 with the task id of a restore the sandbox really started.
    before = sandbox_state(args.sandbox)
    t0 = time.monotonic()
    status, raw = rie.invoke(function_url_event(restore_body, signed_headers(key, restore_body)), timeout)
    took = time.monotonic() - t0
    code, body = http_answer(rie, label, "signed restore -> 202 with the task id", status, raw)
    if code is not None:
        after = sandbox_state(args.sandbox)
        task_id = body.get("taskId") if isinstance(body, dict) else None
        task = next((t for t in after["tasks"] if t["taskId"] == task_id), None)
        ok = (
            code == 202
            and body.get("status") == "started"
            and isinstance(task_id, int)
            and task is not None
            and task["redisId"] == "crs-izbob1wh"
            and restores(after, "crs-izbob1wh") == restores(before, "crs-izbob1wh") + 1
        )
        result(
            ok,
            f"{label} signed restore -> 202 with the task id",
            f"{code} {json.dumps(body, separators=(',', ':'))[:200]}; sandbox task {task_id} "
            f"{'of ' + task['redisId'] if task else 'NOT FOUND'}; restores of crs-izbob1wh "
            f"{restores(before, 'crs-izbob1wh')} -> {restores(after, 'crs-izbob1wh')} ({took:.2f} s, first invocation)",
        )

    # 2. The same request signed with a key the function does not have: 401, nothing restored.
    before = sandbox_state(args.sandbox)
    wrong = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    status, raw = rie.invoke(function_url_event(restore_body, signed_headers(wrong, restore_body)), timeout)
    code, body = http_answer(rie, label, "bad signature -> 401", status, raw)
    if code is not None:
        after = sandbox_state(args.sandbox)
        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        result(
            code == 401
            and error.get("code") == "InvalidSignature"
            and restores(after) == restores(before),
            f"{label} bad signature -> 401",
            f"{code} {error.get('code')}; restores started {restores(before)} -> {restores(after)}",
        )

    # 3. The scheduled in-place drill event of events/drill-in-place.json as a run of its own
    # (drills are keyed on their schedule's name and time): a JSON report. The sandbox restores
    # in place within a second; a clone drill (events/drill.json) is covered by tests/drills.rs.
    drill = json.loads((ROOT / "events" / "drill-in-place.json").read_text())
    before = sandbox_state(args.sandbox)
    drill["drill"]["executionId"] = "pkgtest-" + secrets.token_hex(8)
    drill["drill"]["scheduleName"] = "pkgtest-" + secrets.token_hex(8)
    status, raw = rie.invoke(drill, timeout)
    if status != 200:
        result(False, f"{label} drill event -> JSON answer", f"the emulator answered HTTP {status} {raw[:200]!r}: {rie.failure()}")
    else:
        try:
            report = json.loads(raw)
        except ValueError:
            report = None
        after = sandbox_state(args.sandbox)
        task = next(
            (t for t in after["tasks"] if isinstance(report, dict) and t["taskId"] == report.get("taskId")), None
        )
        time.sleep(0.2)  # the metric line is written before the answer; let the log catch up
        emf = '"DrillSucceeded"' in rie.output()
        result(
            isinstance(report, dict)
            and report.get("outcome") == "succeeded"
            and restores(after, "crs-drill001") == restores(before, "crs-drill001") + 1
            and task is not None
            and task["redisId"] == "crs-drill001"
            and emf,
            f"{label} drill event -> JSON answer",
            (
                ", ".join(f"{k} {report.get(k)}" for k in ("outcome", "taskId", "backupId", "durationSeconds"))
                if isinstance(report, dict)
                else f"not a JSON object: {raw[:200]!r}"
            )
            + f"; sandbox task {task['taskId'] if task else 'NOT FOUND'}{' of ' + task['redisId'] if task else ''}"
            + f"; DrillSucceeded metric line {'written' if emf else 'MISSING'}",
        )


def cmd_init(args) -> None:
    """Cold starts only: a fresh emulator and bootstrap per run, one request each that is refused
    before any backend call (the fixture's stale signature: 401); the emulator's init figure."""
    figures = []
    for i in range(int(args.runs)):
        args.log = str(Path(args.log_dir) / f"rie-init-{i}.log")
        rie = Rie(args)
        try:
            status, raw = rie.invoke(function_url_event("{}", {}), float(args.timeout))
        finally:
            rie.stop()
        inits = init_durations(rie.output())
        if status != 200 or not inits:
            result(False, f"{args.label} init figures", f"run {i}: HTTP {status}, INIT REPORT {inits or 'missing'}")
            return
        figures.append(float(inits[0]))
    figures.sort()
    p50 = figures[len(figures) // 2] if len(figures) % 2 else sum(figures[len(figures) // 2 - 1 : len(figures) // 2 + 1]) / 2
    line = f"{args.label}\t{len(figures)}\t{p50:.2f}\t{figures[0]:.2f}\t{figures[-1]:.2f}"
    print(f"     {args.label}: emulator's init (INIT REPORT durationMs) over {len(figures)} cold starts: p50 {p50:.2f} ms "
          f"(min {figures[0]:.2f}, max {figures[-1]:.2f})", flush=True)
    if args.report:
        with open(args.report, "a") as f:
            f.write(line + "\n")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    cmd, rest = argv[1], argv[2:]
    if cmd == "archs" and len(rest) == 1:
        cmd_archs(*rest)
    elif cmd == "zip" and len(rest) == 3:
        cmd_zip(*rest)
    elif cmd == "elf" and len(rest) == 2:
        cmd_elf(*rest)
    elif cmd == "iam" and len(rest) == 1:
        cmd_iam(*rest)
    elif cmd == "extract" and len(rest) == 2:
        cmd_extract(*rest)
    elif cmd == "seed" and len(rest) == 2:
        cmd_seed(*rest)
    elif cmd in ("invoke", "init"):
        import argparse

        p = argparse.ArgumentParser(prog=f"package_checks.py {cmd}")
        for flag in ("--label", "--rie", "--bootstrap", "--task-dir", "--env-file"):
            p.add_argument(flag, required=True)
        p.add_argument("--rie-prefix", default="")
        p.add_argument("--report", default="")
        p.add_argument("--timeout", default="120")
        if cmd == "invoke":
            p.add_argument("--sandbox", required=True)
            p.add_argument("--log", required=True)
            cmd_invoke(p.parse_args(rest))
        else:
            p.add_argument("--runs", default="10")
            p.add_argument("--log-dir", required=True)
            cmd_init(p.parse_args(rest))
    else:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
