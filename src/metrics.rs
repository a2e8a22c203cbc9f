//! CloudWatch Embedded Metric Format: drill results as metrics users can alarm on.
//!
//! An EMF record is one JSON line on stdout with an `_aws` block; CloudWatch Logs turns it
//! into metrics without any API call from the function.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::job::JobReport;

/// Where metric records go: stdout on Lambda, memory in tests.
#[derive(Debug, Clone, Default)]
pub enum MetricsSink {
    #[default]
    Stdout,
    Capture(Arc<Mutex<Vec<Value>>>),
}

impl MetricsSink {
    fn write(&self, record: Value) {
        match self {
            // A single `println!` writes the whole line at once; EMF needs it unbroken.
            Self::Stdout => println!("{record}"),
            Self::Capture(lines) => lines.lock().unwrap_or_else(|p| p.into_inner()).push(record),
        }
    }
}

/// The EMF record of a finished drill: `DrillSucceeded`/`DrillFailed` (count) and
/// `RestoreDurationSeconds` when the restore ran, dimensioned by `RedisId`.
pub fn drill_record(namespace: &str, redis_id: &str, report: &JobReport, timestamp_ms: i64) -> Value {
    let succeeded = report.outcome == "succeeded";
    let mut metrics =
        vec![json!({"Name": "DrillSucceeded", "Unit": "Count"}), json!({"Name": "DrillFailed", "Unit": "Count"})];
    let mut record = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["RedisId"]], "Metrics": []}],
        },
        "RedisId": redis_id,
        "DrillSucceeded": u8::from(succeeded),
        "DrillFailed": u8::from(!succeeded),
        "outcome": report.outcome,
        "taskId": report.task_id,
        "backupId": report.backup_id,
        "errorCode": report.error_code,
        "backupAgeSeconds": report.backup_age_seconds(),
    });
    if let Some(seconds) = report.duration_seconds {
        metrics.push(json!({"Name": "RestoreDurationSeconds", "Unit": "Seconds"}));
        record["RestoreDurationSeconds"] = seconds.into();
    }
    record["_aws"]["CloudWatchMetrics"][0]["Metrics"] = metrics.into();
    record
}

pub fn emit(sink: &MetricsSink, record: Value) {
    sink.write(record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successful_drill_reports_its_duration_and_one_success() {
        let mut report = crate::job::JobReport::test_report("succeeded");
        report.duration_seconds = Some(42);
        let r = drill_record("CrsRestore", "crs-drill001", &report, 1_700_000_000_000);
        assert_eq!(r["_aws"]["CloudWatchMetrics"][0]["Namespace"], "CrsRestore");
        assert_eq!(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["RedisId"]]));
        assert_eq!((r["DrillSucceeded"].as_u64(), r["DrillFailed"].as_u64()), (Some(1), Some(0)));
        assert_eq!(r["RestoreDurationSeconds"], 42);
        let names: Vec<&str> = r["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        assert_eq!(names, ["DrillSucceeded", "DrillFailed", "RestoreDurationSeconds"]);
    }

    #[test]
    fn a_failed_drill_without_a_restore_has_no_duration_metric() {
        let r = drill_record("N", "crs-drill001", &crate::job::JobReport::test_report("rejected"), 0);
        assert_eq!((r["DrillSucceeded"].as_u64(), r["DrillFailed"].as_u64()), (Some(0), Some(1)));
        assert!(r.get("RestoreDurationSeconds").is_none());
    }
}
