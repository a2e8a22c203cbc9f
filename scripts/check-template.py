"""Checks template.yaml for what the linters cannot know: the project's own invariants.

Run by scripts/validate-template.sh with the .venv interpreter (cfn-lint's YAML loader reads the
short-form intrinsics). Exits non-zero, naming each broken invariant.

* The function's concurrency is bounded: `ReservedConcurrency` (default at least 20, enough for a
  real incident, see docs/DEPLOY.md) is wired to ReservedConcurrentExecutions, and -1 means no
  reservation at all (the property is left out), never 0 (which would throttle everything).
* The drill schedule's Input is the drill event the function expects: JSON whose `mode` is
  `DrillMode` and which carries `scheduleName` and the scheduler's `scheduledTime`, the drill's
  idempotency key across the scheduler's retries (its `executionId` changes on every attempt).
* Every DRILL_* and CLONE_* setting the code reads (src/config.rs) is passed to the function.
"""

import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode


def evaluate(node, conditions, params):
    """The value of a condition or property under `params` (the intrinsics the template uses)."""
    if isinstance(node, dict) and len(node) == 1:
        (key, arg), = node.items()
        if key == "Ref":
            return params.get(arg, "<NoValue>" if arg == "AWS::NoValue" else f"<{arg}>")
        if key == "Condition":
            return evaluate(conditions[arg], conditions, params)
        if key == "Fn::Not":
            return not evaluate(arg[0], conditions, params)
        if key == "Fn::Equals":
            return str(evaluate(arg[0], conditions, params)) == str(evaluate(arg[1], conditions, params))
        if key == "Fn::If":
            name, when_true, when_false = arg
            branch = when_true if evaluate(conditions[name], conditions, params) else when_false
            return evaluate(branch, conditions, params)
    return node


def main(path):
    template, matches = decode(path)
    if template is None:
        sys.exit(f"{path}: cannot be read: {matches}")
    problems = []
    parameter = template.get("Parameters", {}).get("ReservedConcurrency")
    function = template.get("Resources", {}).get("RestoreFunction", {}).get("Properties", {})
    conditions = template.get("Conditions", {})
    if parameter is None:
        problems.append("no ReservedConcurrency parameter")
    elif not (parameter.get("Type") == "Number" and int(parameter.get("Default", 0)) >= 20):
        problems.append(f"ReservedConcurrency must be a Number with a default of at least 20, is {parameter}")
    elif "ReservedConcurrentExecutions" not in function:
        problems.append("RestoreFunction has no ReservedConcurrentExecutions")
    else:
        prop = function["ReservedConcurrentExecutions"]
        default = str(parameter["Default"])
        for value, expected in [(default, default), ("7", "7"), ("-1", "<NoValue>")]:
            got = str(evaluate(prop, conditions, {"ReservedConcurrency": value}))
            if got != expected:
                problems.append(f"ReservedConcurrency={value} gives ReservedConcurrentExecutions {got}, not {expected}")
        rules = str(template.get("Rules", {}))
        if "'ReservedConcurrency'" not in rules or "'0'" not in rules:
            problems.append("no rule refuses ReservedConcurrency 0")
    problems += drill_problems(template, function, conditions)
    for problem in problems:
        print(f"{path}: {problem}")
    sys.exit(1 if problems else 0)


def substitute(node, params):
    """A `!Sub` string with `${Param}` replaced by `params` (and `${AWS::StackName}` by "stack")."""
    text = node["Fn::Sub"] if isinstance(node, dict) else node
    return re.sub(r"\$\{([^}]+)\}", lambda m: params.get(m.group(1), "stack" if m.group(1) == "AWS::StackName" else ""), text)


def drill_problems(template, function, conditions):
    problems = []
    schedule = function.get("Events", {}).get("Drill", {}).get("Properties", {})
    branches = schedule.get("Input", {}).get("Fn::If", [None, None, None])[1:]
    params = {"DrillMode": "clone", "DrillRedisId": "crs-orders62", "DrillRegion": "ap-guangzhou",
              "DrillCallbackUrl": "https://hooks.example.com/drill"}
    if len(branches) != 2:
        problems.append("the drill schedule's Input is not the expected !If of two drill events")
    for branch in branches:
        try:
            drill = json.loads(substitute(branch, params))["drill"]
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"a drill schedule Input is not a drill event: {e}")
            continue
        if drill.get("mode") != "clone":
            problems.append(f"the drill schedule's Input does not pass DrillMode as mode: {drill}")
        if drill.get("scheduledTime") != "<aws.scheduler.scheduled-time>" or not drill.get("scheduleName"):
            problems.append(f"the drill schedule's Input lacks scheduleName/scheduledTime (the drill's key): {drill}")
    config = (Path(__file__).resolve().parent.parent / "src" / "config.rs").read_text()
    env = function.get("Environment", {}).get("Variables", {})
    for name in sorted(set(re.findall(r'"((?:DRILL|CLONE)_[A-Z_]+)"', config))):
        if name not in env:
            problems.append(f"the code reads {name} but the template does not pass it to the function")
    return problems


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
