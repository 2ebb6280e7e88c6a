//! Karpenter's duration strings: `720h`, `1h30m`, `30s`, and `Never` where allowed.
//!
//! Upstream restricts these with CRD patterns (`^([0-9]+(s|m|h))+$`, plus `Never`
//! for `expireAfter` and `consolidateAfter`); budget durations are stricter
//! (hours and/or minutes only). Parsing here accepts exactly those forms.

use crate::error::Invalid;

use std::time::Duration;

/// A duration that may be `Never` (upstream's `NillableDuration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NillableDuration {
    /// The event never happens (`Never`).
    Never,
    /// After this long.
    After(Duration),
}

impl NillableDuration {
    /// The duration, or `None` for `Never`.
    pub fn as_duration(&self) -> Option<Duration> {
        match self {
            NillableDuration::Never => None,
            NillableDuration::After(d) => Some(*d),
        }
    }
}

/// Parses `expireAfter` / `consolidateAfter` values: `Never` or `([0-9]+(s|m|h))+`.
pub fn parse_nillable(text: &str) -> Result<NillableDuration, Invalid> {
    if text == "Never" {
        return Ok(NillableDuration::Never);
    }
    parse(text)
        .map(NillableDuration::After)
        .map_err(|_| Invalid(format!("must be 'Never' or a duration of hours, minutes and seconds such as '720h' or '1h30m' (got {text:?})")))
}

/// Parses `([0-9]+(s|m|h))+` (e.g. `terminationGracePeriod`).
pub fn parse(text: &str) -> Result<Duration, Invalid> {
    parse_units(text, &['h', 'm', 's'])
        .ok_or_else(|| Invalid(format!("must be a duration of hours, minutes and seconds such as '48h' or '1h30m' (got {text:?})")))
}

/// Parses a budget `duration`: hours and/or minutes (`8h`, `30m`, `1h30m`), optionally ending `0s`.
pub fn parse_budget(text: &str) -> Result<Duration, Invalid> {
    let body = text
        .strip_suffix("0s")
        .filter(|b| !b.is_empty())
        .unwrap_or(text);
    parse_units(body, &['h', 'm'])
        .filter(|_| is_hours_then_minutes(body))
        .ok_or_else(|| {
            Invalid(format!(
                "must be hours and/or minutes such as '8h', '30m' or '1h30m' (got {text:?})"
            ))
        })
}

fn is_hours_then_minutes(body: &str) -> bool {
    let units: String = body.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    matches!(units.as_str(), "h" | "m" | "hm")
}

/// Sums `<digits><unit>` groups where every unit is one of `units`.
fn parse_units(text: &str, units: &[char]) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.is_empty() || !units.contains(&c) {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        let seconds = match c {
            'h' => n.checked_mul(3600)?,
            'm' => n.checked_mul(60)?,
            _ => n,
        };
        total = total.checked_add(seconds)?;
        digits.clear();
    }
    digits.is_empty().then_some(Duration::from_secs(total))
}

/// Parses a duration as Go's `time.ParseDuration` does, for settings
/// upstream reads with it (`BATCH_IDLE_DURATION=500ms`, `1.5s`, `1h30m`,
/// `0`): decimal numbers each with a unit of `ns`, `us` (`µs`), `ms`, `s`,
/// `m`, `h`. A negative duration is refused (no setting takes one).
pub fn parse_go(text: &str) -> Result<Duration, Invalid> {
    let err = || {
        Invalid(format!(
            "{text:?} is not a duration such as '500ms', '1.5s' or '1h30m' (units ns, us, ms, s, m, h)"
        ))
    };
    let body = text.strip_prefix('+').unwrap_or(text);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() || body.starts_with('-') {
        return Err(err());
    }
    let mut nanos: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(err());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| err())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(err)?;
        let mut place = scale;
        for digit in fraction.chars() {
            place /= 10;
            part += u128::from(digit.to_digit(10).ok_or_else(err)?) * place;
        }
        nanos = nanos.checked_add(part).ok_or_else(err)?;
        rest = next;
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| err())
}

/// Formats a duration the way Go's `time.Duration.String` does for whole seconds (`720h0m0s`).
pub fn format_go(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_karpenter_durations() {
        assert_eq!(parse("720h").unwrap(), Duration::from_secs(720 * 3600));
        assert_eq!(parse("1h30m15s").unwrap(), Duration::from_secs(5415));
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_nillable("Never").unwrap(), NillableDuration::Never);
        assert_eq!(
            parse_nillable("30s").unwrap().as_duration(),
            Some(Duration::from_secs(30))
        );
        for bad in ["", "1d", "1.5h", "h", "-1h", "1h 30m", "never", "10"] {
            assert!(parse_nillable(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn budget_durations_are_hours_and_minutes() {
        assert_eq!(parse_budget("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse_budget("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_budget("10m0s").unwrap(), Duration::from_secs(600));
        for bad in ["30s", "1m1h", "", "0s", "1h30m10s"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_go("500ms").unwrap(), ms(500));
        assert_eq!(parse_go("1.5s").unwrap(), ms(1500));
        assert_eq!(parse_go("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_go("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_go("+10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_go(".5m").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_go("1us").unwrap(), Duration::from_micros(1));
        assert_eq!(parse_go("2h45m1.5s").unwrap(), ms(9_901_500));
        for bad in ["", "10", "-1s", "1d", "1.2.3s", "s", ".s", "1 s", "1e3s"] {
            assert!(parse_go(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go(Duration::from_secs(720 * 3600)), "720h0m0s");
        assert_eq!(format_go(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_go(Duration::ZERO), "0s");
    }
}
