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

/// One EMF record under construction: the `_aws` block (one directive, dimension `RedisId`) and
/// the members it names, so every metric is declared and valued in one call.
struct Record {
    value: Value,
    metrics: Vec<Value>,
}

impl Record {
    fn new(namespace: &str, redis_id: &str, timestamp_ms: i64) -> Self {
        let value = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["RedisId"]], "Metrics": []}],
            },
            "RedisId": redis_id,
        });
        Self { value, metrics: Vec::new() }
    }

    fn metric(&mut self, name: &str, unit: &str, value: impl Into<Value>) {
        self.metrics.push(json!({"Name": name, "Unit": unit}));
        self.value[name] = value.into();
    }

    /// A member that is logged with the record but is not a metric.
    fn field(&mut self, name: &str, value: impl Into<Value>) {
        self.value[name] = value.into();
    }

    fn finish(mut self) -> Value {
        self.value["_aws"]["CloudWatchMetrics"][0]["Metrics"] = self.metrics.into();
        self.value
    }
}

/// The EMF record of a finished drill, dimensioned by `RedisId` (the source): `DrillSucceeded`
/// and `DrillFailed` (counts), `RestoreDurationSeconds` (the RTO: restore requested to restored)
/// when it ran, `BackupAgeSeconds` (the RPO: backup start to drill start) when known, and for
/// clone drills `DrillCleanupFailed` (1 when the clone may be left running).
pub fn drill_record(namespace: &str, redis_id: &str, report: &JobReport, clone: bool, timestamp_ms: i64) -> Value {
    let succeeded = report.outcome == "succeeded";
    let mut r = Record::new(namespace, redis_id, timestamp_ms);
    r.metric("DrillSucceeded", "Count", u8::from(succeeded));
    r.metric("DrillFailed", "Count", u8::from(!succeeded));
    r.field("outcome", report.outcome);
    r.field("taskId", report.task_id);
    r.field("backupId", report.backup_id.clone());
    r.field("errorCode", report.error_code.clone());
    r.field("cloneInstanceId", report.clone_instance_id.clone());
    r.field("cleanup", report.cleanup.clone());
    if let Some(seconds) = report.duration_seconds {
        r.metric("RestoreDurationSeconds", "Seconds", seconds);
    }
    if let Some(age) = report.backup_age_seconds() {
        r.metric("BackupAgeSeconds", "Seconds", age);
    }
    if clone {
        r.metric("DrillCleanupFailed", "Count", u8::from(report.cleanup_failed));
    }
    r.finish()
}

/// The EMF record of a clone drill's orphan sweep: `DrillOrphansDestroyed` (count), and
/// `DrillCleanupFailed = 1` when an orphan could not be removed.
pub fn sweep_record(namespace: &str, redis_id: &str, destroyed: u32, failed: bool, timestamp_ms: i64) -> Value {
    let mut r = Record::new(namespace, redis_id, timestamp_ms);
    r.metric("DrillOrphansDestroyed", "Count", destroyed);
    if failed {
        r.metric("DrillCleanupFailed", "Count", 1);
    }
    r.finish()
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
        let r = drill_record("CrsRestore", "crs-drill001", &report, false, 1_700_000_000_000);
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
        let r = drill_record("N", "crs-drill001", &crate::job::JobReport::test_report("rejected"), false, 0);
        assert_eq!((r["DrillSucceeded"].as_u64(), r["DrillFailed"].as_u64()), (Some(0), Some(1)));
        assert!(r.get("RestoreDurationSeconds").is_none());
    }
}
