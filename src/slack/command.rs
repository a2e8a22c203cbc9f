//! The slash command's text: `<redisId> <backupId|latest> [mode=clone|mode=inPlace] [region]
//! [reason...]` or `help`. The mode is a `key=value` word so it can never be mistaken for a
//! region (which has no `=`) or for the first word of a reason.
//!
//! Parsed into the same domain types as a webhook request, so nothing downstream sees an
//! invalid id. Every other input becomes a usage error whose message says what was wrong.

use crate::payload::{BackupRef, Reason, RedisId, Region, RestoreMode};

use super::messages::escape;

/// Reasons travel inside the confirmation token, which must fit a 2000-character button value.
pub const MAX_REASON_CHARS: usize = 200;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Restore(RestoreCommand),
}

/// A restore request from Slack, before the default region is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreCommand {
    pub redis_id: RedisId,
    pub backup: BackupRef,
    pub region: Option<Region>,
    pub reason: Option<String>,
    pub mode: RestoreMode,
}

/// Why the text is not a command; the message is Slack mrkdwn, user input already escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Parses the `text` field of a slash command (as Slack sends it: `&`, `<`, `>` escaped).
pub fn parse(text: &str) -> Result<Command, UsageError> {
    let text = unescape(text);
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        return Err(UsageError("Tell me which instance to restore and from which backup.".into()));
    };
    if first.eq_ignore_ascii_case("help") {
        return Ok(Command::Help);
    }
    let redis_id = RedisId::parse(first).map_err(|_| {
        UsageError(format!(
            "`{}` is not an instance id: expected `crs-` and 8 lowercase letters or digits.",
            shown(first)
        ))
    })?;
    let Some(second) = words.next() else {
        return Err(UsageError(format!("Which backup of `{redis_id}`? Give a backup id or `latest`.")));
    };
    let backup = if second.eq_ignore_ascii_case("latest") {
        BackupRef::Latest
    } else {
        BackupRef::parse(second).map_err(|_| {
            UsageError(format!(
                "`{}` is not a backup id: expected a backup UUID, an API 3.0 numeric backup id, or `latest`.",
                shown(second)
            ))
        })?
    };
    let mut rest: Vec<&str> = words.collect();
    let mode = match rest.first().and_then(|w| w.get(..5).filter(|p| p.eq_ignore_ascii_case("mode=")).map(|_| &w[5..]))
    {
        Some(value) => {
            let mode = if value.eq_ignore_ascii_case("clone") {
                RestoreMode::Clone
            } else if value.eq_ignore_ascii_case("inplace") {
                RestoreMode::InPlace
            } else {
                return Err(UsageError(format!(
                    "`mode={}` is not a mode: use `mode=clone` or `mode=inPlace`.",
                    shown(value)
                )));
            };
            rest.remove(0);
            mode
        }
        None => RestoreMode::InPlace,
    };
    let region = match rest.first().and_then(|w| as_region(w)) {
        Some(region) => {
            rest.remove(0);
            Some(region)
        }
        None => None,
    };
    let reason = if rest.is_empty() {
        None
    } else {
        let joined = rest.join(" ");
        if joined.chars().count() > MAX_REASON_CHARS {
            return Err(UsageError(format!("The reason is longer than {MAX_REASON_CHARS} characters; shorten it.")));
        }
        // split_whitespace already removed line breaks; this also refuses other control characters.
        Reason::parse(&joined).map_err(|e| UsageError(format!("The reason {e}.")))?;
        Some(joined)
    };
    Ok(Command::Restore(RestoreCommand { redis_id, backup, region, reason, mode }))
}

/// A region is recognised by its shape (`ap-guangzhou`, `na-siliconvalley`, `ap-shanghai-fsi`),
/// so a reason whose first word is an ordinary word is never mistaken for one.
fn as_region(word: &str) -> Option<Region> {
    let lower = word.to_ascii_lowercase();
    let (area, place) = lower.split_once('-')?;
    let known_area = matches!(area, "ap" | "na" | "eu" | "sa" | "me" | "af" | "us");
    let place_ok =
        place.split('-').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
            && place.starts_with(|c: char| c.is_ascii_lowercase());
    if known_area && place_ok { Region::parse(&lower).ok() } else { None }
}

/// Slack escapes `&`, `<` and `>` in command text; work on what the user typed.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// User input quoted back in a message: short and unable to break out of its code span.
fn shown(word: &str) -> String {
    let short: String = word.chars().take(40).filter(|c| *c != '`').collect();
    escape(&short)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "crs-izbob1wh";
    const BACKUP: &str = "e824aecc-ef5e-11e6-a2c7-525400082493";

    fn restore(redis: &str, backup: BackupRef, region: Option<&str>, reason: Option<&str>) -> Command {
        Command::Restore(RestoreCommand {
            redis_id: RedisId::parse(redis).expect("id"),
            backup,
            region: region.map(|r| Region::parse(r).expect("region")),
            reason: reason.map(str::to_owned),
            mode: RestoreMode::InPlace,
        })
    }

    fn id(b: &str) -> BackupRef {
        BackupRef::parse(b).expect("backup")
    }

    #[test]
    fn the_command_text_table_parses_as_documented() {
        let cases: Vec<(&str, Command)> = vec![
            ("help", Command::Help),
            ("  HELP  ", Command::Help),
            ("crs-izbob1wh latest", restore(ID, BackupRef::Latest, None, None)),
            ("crs-izbob1wh LATEST", restore(ID, BackupRef::Latest, None, None)),
            ("crs-izbob1wh e824aecc-ef5e-11e6-a2c7-525400082493", restore(ID, id(BACKUP), None, None)),
            ("crs-izbob1wh latest ap-guangzhou", restore(ID, BackupRef::Latest, Some("ap-guangzhou"), None)),
            ("crs-izbob1wh latest AP-Shanghai-FSI", restore(ID, BackupRef::Latest, Some("ap-shanghai-fsi"), None)),
            (
                "crs-izbob1wh latest ap-guangzhou INC-1234 cache corrupted",
                restore(ID, BackupRef::Latest, Some("ap-guangzhou"), Some("INC-1234 cache corrupted")),
            ),
            // The first reason word is not region-shaped, so there is no region.
            ("crs-izbob1wh latest cache corrupted", restore(ID, BackupRef::Latest, None, Some("cache corrupted"))),
            ("crs-izbob1wh latest INC-1234", restore(ID, BackupRef::Latest, None, Some("INC-1234"))),
            (
                "\t crs-izbob1wh \n 678362566696298532848117   na-siliconvalley   too   many\tspaces ",
                restore(ID, id("678362566696298532848117"), Some("na-siliconvalley"), Some("too many spaces")),
            ),
            (
                "crs-izbob1wh latest see &lt;INC-9&gt; &amp; more",
                restore(ID, BackupRef::Latest, None, Some("see <INC-9> & more")),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn the_mode_word_comes_after_the_backup_and_is_never_a_region_or_a_reason() {
        let mode_of = |text: &str| match parse(text) {
            Ok(Command::Restore(r)) => (r.mode, r.region.map(|r| r.to_string()), r.reason),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(mode_of("crs-izbob1wh latest mode=clone INC-1"), (RestoreMode::Clone, None, Some("INC-1".into())));
        assert_eq!(
            mode_of("crs-izbob1wh latest MODE=Clone ap-guangzhou INC-1"),
            (RestoreMode::Clone, Some("ap-guangzhou".into()), Some("INC-1".into()))
        );
        assert_eq!(mode_of("crs-izbob1wh latest mode=inPlace"), (RestoreMode::InPlace, None, None));
        assert_eq!(
            mode_of("crs-izbob1wh latest clone the cache"),
            (RestoreMode::InPlace, None, Some("clone the cache".into()))
        );
        assert!(parse("crs-izbob1wh latest mode=copy").expect_err("bad mode").0.contains("mode=clone"));
    }

    #[test]
    fn anything_else_is_a_usage_error_that_says_what_is_wrong() {
        let cases = [
            ("", "which instance"),
            ("   ", "which instance"),
            ("crs-izbob1wh", "Which backup"),
            ("crs-IZBOB1WH latest", "not an instance id"),
            ("prod-redis latest", "not an instance id"),
            ("crs-izbob1wh yesterday", "not a backup id"),
            ("crs-izbob1wh ../../etc", "not a backup id"),
            ("latest crs-izbob1wh", "not an instance id"),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.0.to_lowercase().contains(&needle.to_lowercase()), "{text:?}: {err}");
        }
        let long = format!("crs-izbob1wh latest {}", "x".repeat(MAX_REASON_CHARS + 1));
        assert!(parse(&long).expect_err("long").0.contains("longer than"));
    }

    #[test]
    fn user_input_echoed_in_errors_cannot_inject_markup() {
        let err = parse("<!channel>`x latest").expect_err("invalid id");
        assert!(!err.0.contains("<!channel>"), "{err}");
        assert!(err.0.contains("&lt;!channel&gt;"), "{err}");
    }
}
