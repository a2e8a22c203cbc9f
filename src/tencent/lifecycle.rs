//! Removing an instance (API 3.0): `DestroyPostpaidInstance` isolates a pay-as-you-go instance
//! into Tencent's recycle bin, `CleanUpInstance` removes an isolated one from it at once.
//!
//! Both are irreversible for the data: callers pass only instances this function created and
//! tagged (drill clones); see `drill::clone` for that guard.

use serde_json::json;

use super::{ApiVersion, TaskId, TencentClient, TencentError, lenient_i64};
use crate::payload::Region;
use crate::secrets::TencentCredentials;

impl TencentClient {
    /// Isolates a pay-as-you-go instance (it keeps its data in the recycle bin until Tencent
    /// releases it, by default 2 hours later for pay-as-you-go instances).
    pub async fn destroy_postpaid_instance(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        instance_id: &str,
    ) -> Result<TaskId, TencentError> {
        self.lifecycle_call(creds, region, "DestroyPostpaidInstance", instance_id).await
    }

    /// Removes an isolated instance from the recycle bin for good.
    pub async fn clean_up_instance(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        instance_id: &str,
    ) -> Result<TaskId, TencentError> {
        self.lifecycle_call(creds, region, "CleanUpInstance", instance_id).await
    }

    async fn lifecycle_call(
        &self,
        creds: &TencentCredentials,
        region: &Region,
        action: &'static str,
        instance_id: &str,
    ) -> Result<TaskId, TencentError> {
        if self.version() == ApiVersion::V2 {
            return Err(TencentError::Config(format!(
                "{action} exists only in Tencent API 3.0 (TENCENT_API_VERSION=3)"
            )));
        }
        let data = self.call(creds, region, action, &[], json!({"InstanceId": instance_id})).await?;
        data.get("TaskId")
            .and_then(lenient_i64)
            .ok_or_else(|| TencentError::Malformed { action, detail: "no task id in the answer".into() })
    }
}
