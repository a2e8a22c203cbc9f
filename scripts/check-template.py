"""Checks template.yaml for what the linters cannot know: the project's own invariants.

Run by scripts/validate-template.sh with the .venv interpreter (cfn-lint's YAML loader reads the
short-form intrinsics). Exits non-zero, naming each broken invariant.

* The function's concurrency is bounded: `ReservedConcurrency` (default at least 20, enough for a
  real incident, see docs/DEPLOY.md) is wired to ReservedConcurrentExecutions, and -1 means no
  reservation at all (the property is left out), never 0 (which would throttle everything).
"""

import sys

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
    for problem in problems:
        print(f"{path}: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
