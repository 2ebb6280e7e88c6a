//! Disruption-budget schedules: standard 5-field cron (UTC) or a descriptor
//! (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`),
//! the forms upstream accepts through robfig/cron's standard parser.

use crate::error::Invalid;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Parses a budget schedule; the error says what is wrong in plain words.
pub fn parse(text: &str) -> Result<Cron, Invalid> {
    let normalized = match text.trim() {
        "@midnight" => "@daily",
        other => other,
    };
    if normalized.starts_with('@') {
        const DESCRIPTORS: &[&str] = &[
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@hourly",
        ];
        if !DESCRIPTORS.contains(&normalized) {
            return Err(Invalid(format!(
                "unknown schedule descriptor {text:?}: use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly"
            )));
        }
    } else if normalized.split_whitespace().count() != 5 {
        return Err(Invalid(format!(
            "must be a cron schedule with 5 fields (minute hour day-of-month month day-of-week) or a descriptor such as @daily (got {text:?})"
        )));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser.parse(normalized).map_err(|e| {
        // Name the first field that fails on its own, since the parser's error does not.
        const FIELDS: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
        let fields: Vec<&str> = normalized.split_whitespace().collect();
        let bad = (0..fields.len().min(5)).find(|&i| {
            let mut alone = ["*"; 5];
            alone[i] = fields[i];
            parser.parse(&alone.join(" ")).is_err()
        });
        match bad {
            Some(i) => format!(
                "invalid cron schedule {text:?}: the {} field {:?} is invalid",
                FIELDS[i], fields[i]
            ),
            None => format!("invalid cron schedule {text:?}: {e}"),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_standard_cron_and_descriptors() {
        for ok in [
            "0 9 * * mon-fri",
            "*/15 * * * *",
            "0 0 1 1 *",
            "@daily",
            "@midnight",
            "@annually",
            "@hourly",
            "30 22 * * SUN",
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(
            parse("0 25 * * *").unwrap_err().0,
            "invalid cron schedule \"0 25 * * *\": the hour field \"25\" is invalid"
        );
        assert_eq!(
            parse("0 0 * 13 *").unwrap_err().0,
            "invalid cron schedule \"0 0 * 13 *\": the month field \"13\" is invalid"
        );
    }

    #[test]
    fn rejects_bad_schedules() {
        for bad in [
            "",
            "@fortnightly",
            "* * * *",
            "0 0 0 * * *",
            "61 * * * *",
            "* 25 * * *",
            "0 0 * * funday",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
