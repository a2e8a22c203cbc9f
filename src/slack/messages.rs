//! What the user sees: the Block Kit prompt and the short messages around it.
//!
//! Everything that came from a user or from Tencent is escaped before it goes into mrkdwn, so a
//! reason like `<!channel>` is shown, not executed.

use serde_json::{Value, json};

use crate::payload::{BackupId, RedisId, Region, RestoreMode};
use crate::tencent::clone::Price;

/// `action_id` of the prompt's buttons.
pub const CONFIRM_ACTION: &str = "crs_restore_confirm";
pub const CANCEL_ACTION: &str = "crs_restore_cancel";

/// Slack's mrkdwn escaping: only these three characters have meaning in message text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A user mention, only for something shaped like a Slack user id (anything else is not ours
/// to put between angle brackets).
pub fn mention(user_id: &str) -> String {
    if super::config::is_slack_id(user_id) { format!("<@{user_id}>") } else { "someone".to_owned() }
}

/// A message only the requester sees (the default for slash command answers).
pub fn ephemeral(text: &str) -> Value {
    json!({"response_type": "ephemeral", "text": text})
}

/// Replaces the message the interaction came from (the prompt) with plain text: the buttons go.
pub fn replace(text: &str) -> Value {
    json!({"replace_original": true, "text": text})
}

/// A new message everyone in the channel sees. `replace_original: false` because an
/// ephemeral prompt cannot turn into a channel message.
pub fn in_channel(text: &str) -> Value {
    json!({"response_type": "in_channel", "replace_original": false, "text": text})
}

/// A new ephemeral message next to the prompt (refusals of a button click).
pub fn ephemeral_note(text: &str) -> Value {
    json!({"response_type": "ephemeral", "replace_original": false, "text": text})
}

pub fn help(command: &str) -> Value {
    let c = command;
    ephemeral(&format!(
        "*{c}* restores a Tencent Cloud Redis (CRS) instance from one of its backups, after you confirm.\n\
         • `{c} {USAGE}`\n\
         • `{c} crs-izbob1wh latest INC-1234 cache corrupted`\n\
         • `{c} crs-izbob1wh e824aecc-ef5e-11e6-a2c7-525400082493 ap-shanghai`\n\
         • `{c} help`\n\
         You get a prompt with the backup that would be used; nothing happens until you press *Restore now*. \
         Prompts expire after 5 minutes."
    ))
}

pub fn usage(command: &str, problem: &str) -> Value {
    ephemeral(&format!("{problem}\nUsage: `{command} {USAGE}` (or `{command} help`)."))
}

/// The argument synopsis, escaped: `<` and `>` are markup in Slack messages, even in code spans.
const USAGE: &str = "&lt;instance id&gt; &lt;backup id|latest&gt; [region] [reason...]";

/// The backup as shown: id, and when it was taken (Tencent reports Beijing time).
pub fn backup_label(backup_id: &BackupId, time: Option<&str>, latest: bool) -> String {
    let which = if latest { " (latest usable)" } else { "" };
    match time {
        Some(t) if !t.is_empty() => format!("`{backup_id}`{which}\ntaken {} (UTC+8)", escape(t)),
        _ => format!("`{backup_id}`{which}"),
    }
}

/// What a prompt shows.
pub struct PromptView<'a> {
    pub user_id: &'a str,
    pub redis_id: &'a RedisId,
    pub region: &'a Region,
    pub backup_id: &'a BackupId,
    pub backup_time: Option<&'a str>,
    pub latest: bool,
    pub reason: Option<&'a str>,
    /// The sealed confirmation token: the value of both buttons.
    pub token: &'a str,
    pub mode: RestoreMode,
    /// E.g. `0.20 CNY per hour`, when Tencent quoted a price.
    pub price: Option<String>,
}

/// `0.20 CNY per hour`.
pub fn price(price: &Price, per: &str) -> String {
    format!("{:.2} {} per {per}", price.amount, escape(&price.currency))
}

/// The confirmation prompt: instance, region, backup, reason, the warning, and the buttons.
pub fn prompt(view: &PromptView<'_>) -> Value {
    let reason = view.reason.map_or_else(|| "_none given_".to_owned(), escape);
    let clone = view.mode == RestoreMode::Clone;
    let summary = if clone {
        format!(
            "Restore {} ({}) from backup {} into a NEW, BILLED clone instance? The instance itself is not changed.",
            view.redis_id, view.region, view.backup_id
        )
    } else {
        format!(
            "Restore {} ({}) from backup {}? Current data will be overwritten.",
            view.redis_id, view.region, view.backup_id
        )
    };
    let (title, mode, warning, button) = if clone {
        let cost = view.price.as_ref().map_or_else(|| "price unknown".to_owned(), |p| format!("about {p}"));
        (
            "*Restore a Redis instance by cloning it from a backup?*",
            "Clone (CloneInstances)",
            format!(
                ":moneybag: *A new, billed instance will be created* ({cost}) as a twin of `{}` with the backup's data. \
                 `{}` itself is not changed; moving clients to the clone is up to you.",
                view.redis_id, view.redis_id
            ),
            "Create clone",
        )
    } else {
        (
            "*Restore a Redis instance from a backup?*",
            "In place (RestoreInstance)",
            format!(
                ":warning: *All data currently in `{}` will be overwritten* by this backup. This cannot be undone.",
                view.redis_id
            ),
            "Restore now",
        )
    };
    json!({
        "response_type": "ephemeral",
        "text": summary,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": title}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Instance*\n`{}`", view.redis_id)},
                {"type": "mrkdwn", "text": format!("*Region*\n{}", view.region)},
                {"type": "mrkdwn", "text": format!("*Backup*\n{}", backup_label(view.backup_id, view.backup_time, view.latest))},
                {"type": "mrkdwn", "text": format!("*Reason*\n{reason}")},
                {"type": "mrkdwn", "text": format!("*Mode*\n{mode}")},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": warning}},
            {"type": "actions", "block_id": "crs_restore_actions", "elements": [
                {"type": "button", "action_id": CONFIRM_ACTION, "style": "danger", "value": view.token,
                 "text": {"type": "plain_text", "text": button}},
                {"type": "button", "action_id": CANCEL_ACTION, "value": view.token,
                 "text": {"type": "plain_text", "text": "Cancel"}},
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                "Only {} can confirm. This prompt expires in 5 minutes.", mention(view.user_id)
            )}]},
        ],
    })
}

/// `42 s`, `3 min 5 s`, `1 h 2 min`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_control_characters_are_escaped_and_mentions_need_a_real_id() {
        assert_eq!(escape("<!channel> & <@U1|x>"), "&lt;!channel&gt; &amp; &lt;@U1|x&gt;");
        assert_eq!(mention("U0123ALICE"), "<@U0123ALICE>");
        assert_eq!(mention("U1><!channel"), "someone");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(185), "3 min 5 s");
        assert_eq!(duration(3720), "1 h 2 min");
    }

    #[test]
    fn the_prompt_shows_everything_and_carries_the_token_on_both_buttons() {
        let (redis, region) = (RedisId::parse("crs-izbob1wh").expect("id"), Region::parse("ap-guangzhou").expect("r"));
        let backup = BackupId::parse("e824aecc-ef5e-11e6-a2c7-525400082493").expect("b");
        let view = PromptView {
            user_id: "U0123ALICE",
            redis_id: &redis,
            region: &region,
            backup_id: &backup,
            backup_time: Some("2026-11-25 03:00:00"),
            latest: true,
            reason: Some("<!here> INC-1"),
            token: "tok.en",
            mode: RestoreMode::InPlace,
            price: None,
        };
        let p = prompt(&view);
        let text = p.to_string();
        for needle in
            ["crs-izbob1wh", "ap-guangzhou", "e824aecc", "2026-11-25 03:00:00", "overwritten", "&lt;!here&gt;"]
        {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        assert!(!text.contains("<!here>"));
        let buttons = p["blocks"][3]["elements"].as_array().expect("buttons");
        assert_eq!(buttons[0]["action_id"], CONFIRM_ACTION);
        assert_eq!(buttons[1]["action_id"], CANCEL_ACTION);
        assert!(buttons.iter().all(|b| b["value"] == "tok.en"));
        assert_eq!(p["response_type"], "ephemeral");

        let clone = PromptView {
            mode: RestoreMode::Clone,
            price: Some(price(&Price { amount: 0.2, currency: "CNY".into() }, "hour")),
            ..view
        };
        let text = prompt(&clone).to_string();
        for needle in ["Clone (CloneInstances)", "new, billed instance", "about 0.20 CNY per hour", "Create clone"] {
            assert!(text.contains(needle), "{needle} missing: {text}");
        }
        assert!(!text.contains("overwritten"), "{text}");
    }
}
