//! In place: `RestoreInstance` overwrites the instance with the backup. Tencent documents this for
//! Memory Edition 2.8 and CKV; for later editions its refusal becomes `InPlaceRestoreUnsupported`,
//! which tells the caller to clone instead. The rule is Tencent's: nothing is pre-blocked here.

use super::{Outcome, Target, resolve_backup, with_fresh_secrets};
use crate::audit::Audit;
use crate::error::{CheckFailure, RestoreError};
use crate::secrets::InstancePassword;
use crate::state::AppState;
use crate::tencent::{ApiVersion, Failure, TencentError};

pub async fn execute(
    state: &AppState,
    target: &Target,
    dry_run: bool,
    audit: &mut Audit,
) -> Result<Outcome, RestoreError> {
    let secrets = &state.secrets;
    let (creds, password) =
        tokio::join!(secrets.tencent_credentials(false), secrets.instance_password(&target.redis_id, false));
    let (creds, password) = (creds?, password?);
    let tencent = &state.tencent;
    let region = &target.region;

    // A dry run checks the instance first, as Tencent would, so a missing instance is reported
    // as such rather than as a missing backup.
    let checked = if dry_run {
        let (name, status, edition) = match tencent.version() {
            ApiVersion::V2 => {
                let i = tencent
                    .describe_instance(&creds, region, &target.redis_id)
                    .await?
                    .ok_or(CheckFailure::InstanceNotExists)?;
                (i.name, i.status, None)
            }
            ApiVersion::V3 => {
                let i = tencent
                    .describe_instance_detail(&creds, region, target.redis_id.as_str())
                    .await?
                    .ok_or(CheckFailure::InstanceNotExists)?;
                (i.name, Some(i.status), Some(i.edition))
            }
        };
        if status != Some(2) {
            return Err(CheckFailure::InstanceStatusAbnormal(status).into());
        }
        if tencent.version() == ApiVersion::V2 && *password == InstancePassword::PasswordFree {
            return Err(RestoreError::Tencent(TencentError::Config(format!(
                "instance {} is configured as password-free, which only TENCENT_API_VERSION=3 supports",
                target.redis_id
            ))));
        }
        Some((name, edition))
    } else {
        None
    };

    let backup = resolve_backup(state, &creds, target, dry_run).await?;
    audit.backup_id = Some(backup.id.clone());

    if let Some((instance_name, edition)) = checked {
        return Ok(Outcome::DryRunOk { backup, instance_name, edition });
    }

    let started = with_fresh_secrets(state, &target.redis_id, (creds.clone(), password), audit, |creds, password| {
        let backup_id = backup.id.clone();
        async move { tencent.restore_instance(&creds, region, &target.redis_id, &backup_id, &password).await }
    })
    .await;
    let task_id = match started {
        Err(RestoreError::Tencent(source @ TencentError::Api { failure: Failure::InPlaceUnsupported, .. })) => {
            // Name the edition in the answer; a failed read only makes the message vaguer.
            let edition = match tencent.describe_instance_detail(&creds, region, target.redis_id.as_str()).await {
                Ok(found) => found.map(|i| i.edition.label()),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the edition of an instance Tencent refused to restore in place");
                    None
                }
            };
            return Err(RestoreError::InPlaceRestoreUnsupported { edition, source });
        }
        other => other?,
    };
    audit.task_id = Some(task_id);
    Ok(Outcome::Started { task_id, backup })
}
