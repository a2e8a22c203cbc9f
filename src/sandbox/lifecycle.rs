//! The end of an instance's life, as Tencent runs it for pay-as-you-go instances:
//! `DestroyPostpaidInstance` isolates it into the recycle bin (`Status` -2, `IsolateTime` and
//! `OfflineTime` set), `CleanUpInstance` removes an isolated one for good. Plus the ways a clone
//! can turn out that a DR drill must cope with (it never runs, or it is not the twin it should be).
//!
//! Both take effect at once here, and their task ids are not followed by DescribeTaskInfo: the
//! function never waits on them (it reads the instance's status instead).

use super::errors::ApiError;
use super::state::{Instance, State};

/// How the next clone of a source turns out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NextClone {
    /// Created as asked: it runs after the clone duration.
    #[default]
    Runs,
    /// Creation fails: after the clone duration Tencent shows it isolated (-2).
    Fails,
    /// It runs, but with half the source's memory: not a twin.
    Differs,
}

impl NextClone {
    /// The status the clone ends in and its memory size.
    pub(crate) fn apply(self, source: &Instance) -> (i64, i64) {
        match self {
            Self::Runs => (2, source.size_mb),
            Self::Fails => (-2, source.size_mb),
            Self::Differs => (2, (source.size_mb / 2).max(256)),
        }
    }
}

impl State {
    /// DestroyPostpaidInstance. Pay-as-you-go only; an instance already isolated is refused.
    /// Whether Tencent accepts destroying a clone that is still being created is undocumented:
    /// the sandbox accepts it (statuses 0, 1 and 2), and the function treats a refusal as a
    /// clean-up failure that the next drill's orphan sweep retries.
    pub fn destroy_postpaid(&mut self, redis_id: &str, region: Option<&str>, now_unix: i64) -> Result<u64, ApiError> {
        if redis_id.is_empty() {
            return Err(ApiError::named("InvalidParameter"));
        }
        let now = std::time::Instant::now();
        let instance = self.instance(redis_id, region)?;
        if instance.billing_mode != 0 {
            return Err(ApiError::named("InvalidParameterValue.UnSupportedType"));
        }
        let status = instance.status_at(now);
        if status < 0 {
            return Err(ApiError::named("ResourceUnavailable.InstanceStatusError"));
        }
        let task = self.allocate_task_id();
        if let Some(i) = self.instance_mut(redis_id) {
            i.creating = None;
            i.status = -2;
            i.isolated_unix = Some(now_unix);
        }
        Ok(task)
    }

    /// CleanUpInstance: only an isolated (recycle-bin) instance; it is gone afterwards.
    pub fn clean_up(&mut self, redis_id: &str, region: Option<&str>) -> Result<u64, ApiError> {
        if redis_id.is_empty() {
            return Err(ApiError::named("InvalidParameter.EmptyParam"));
        }
        let instance = self.instance(redis_id, region)?;
        if instance.status_at(std::time::Instant::now()) != -2 {
            return Err(ApiError::named("ResourceUnavailable.InstanceStatusAbnormal"));
        }
        let task = self.allocate_task_id();
        self.instances.retain(|i| i.redis_id != redis_id);
        Ok(task)
    }

    pub fn set_next_clone(&mut self, source: &str, outcome: NextClone) {
        self.next_clone.insert(source.to_owned(), outcome);
    }
}
