//! A checker for CloudWatch Embedded Metric Format records, written from AWS's published
//! specification ("Specification: Embedded metric format", CloudWatch User Guide): a record that
//! passes here is one CloudWatch Logs would turn into metrics, so the alarms see what we emit.

use std::collections::HashSet;

use serde_json::Value;

/// The units the specification allows for `Unit` (CloudWatch's StandardUnit values).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Every rule of the specification that a record can break, as a list of violations (empty =
/// valid): root object with `_aws` {`Timestamp` (ms number), `CloudWatchMetrics` [MetricDirective]};
/// each directive a `Namespace` string (1-1024), `Dimensions` [[≤ 30 member names]] whose members
/// are strings at the root, `Metrics` [≤ 100 {`Name`, optional `Unit` from the list,
/// optional `StorageResolution` 1 or 60}] whose members are numbers or ≤ 100 numbers; no other
/// members in the objects the specification defines.
pub fn violations(record: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let Some(root) = record.as_object() else {
        return vec!["the root is not a JSON object".into()];
    };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["no _aws metadata object".into()];
    };
    for key in aws.keys() {
        if !["Timestamp", "CloudWatchMetrics", "LogGroupName", "LogStreamName"].contains(&key.as_str()) {
            bad.push(format!("_aws has a member the specification does not define: {key}"));
        }
    }
    match aws.get("Timestamp") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|ms| ms > 1_000_000_000_000) || n.as_u64() == Some(0) => {}
        other => bad.push(format!("_aws.Timestamp must be epoch milliseconds, got {other:?}")),
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        bad.push("_aws.CloudWatchMetrics must be an array".into());
        return bad;
    };
    for (i, directive) in directives.iter().enumerate() {
        let Some(d) = directive.as_object() else {
            bad.push(format!("MetricDirective {i} is not an object"));
            continue;
        };
        for key in d.keys() {
            if !["Namespace", "Dimensions", "Metrics"].contains(&key.as_str()) {
                bad.push(format!("MetricDirective {i} has an undefined member {key}"));
            }
        }
        match d.get("Namespace").and_then(Value::as_str) {
            Some(ns) if (1..=1024).contains(&ns.len()) => {}
            other => {
                bad.push(format!("MetricDirective {i}: Namespace must be a 1-1024 character string, got {other:?}"))
            }
        }
        for set in d.get("Dimensions").and_then(Value::as_array).into_iter().flatten() {
            let Some(names) = set.as_array() else {
                bad.push(format!("MetricDirective {i}: a DimensionSet is not an array"));
                continue;
            };
            if names.len() > 30 {
                bad.push(format!("MetricDirective {i}: a DimensionSet has more than 30 dimensions"));
            }
            for name in names {
                match name.as_str().map(|n| root.get(n)) {
                    Some(Some(Value::String(v))) if !v.is_empty() && v.len() <= 1024 => {}
                    _ => bad.push(format!("dimension {name} must name a non-empty string member of the root")),
                }
            }
        }
        let Some(metrics) = d.get("Metrics").and_then(Value::as_array) else {
            bad.push(format!("MetricDirective {i}: Metrics must be an array"));
            continue;
        };
        if metrics.len() > 100 {
            bad.push(format!("MetricDirective {i} defines more than 100 metrics"));
        }
        let mut names = HashSet::new();
        for m in metrics {
            let Some(def) = m.as_object() else {
                bad.push(format!("MetricDirective {i}: a MetricDefinition is not an object"));
                continue;
            };
            for key in def.keys() {
                if !["Name", "Unit", "StorageResolution"].contains(&key.as_str()) {
                    bad.push(format!("a MetricDefinition has an undefined member {key}"));
                }
            }
            let Some(name) = def.get("Name").and_then(Value::as_str).filter(|n| !n.is_empty() && n.len() <= 1024)
            else {
                bad.push(format!("a MetricDefinition has no valid Name: {m}"));
                continue;
            };
            if !names.insert(name) {
                bad.push(format!("metric {name} is defined twice in one directive"));
            }
            if let Some(unit) = def.get("Unit")
                && !unit.as_str().is_some_and(|u| UNITS.contains(&u))
            {
                bad.push(format!("metric {name}: Unit {unit} is not a CloudWatch unit"));
            }
            if let Some(res) = def.get("StorageResolution")
                && !matches!(res.as_u64(), Some(1 | 60))
            {
                bad.push(format!("metric {name}: StorageResolution must be 1 or 60"));
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => bad
                    .push(format!("metric {name} must be a number (or up to 100 numbers) at the root, got {other:?}")),
            }
        }
    }
    bad
}
