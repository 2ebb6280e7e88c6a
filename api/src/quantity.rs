//! Kubernetes resource quantities: exact parsing, arithmetic and canonical formatting.
//!
//! Follows `k8s.io/apimachinery/pkg/api/resource`: the grammar
//! `[+-]digits[.digits](Ki|Mi|Gi|Ti|Pi|Ei | n|u|m|""|k|M|G|T|P|E | e[+-]N)`,
//! values kept exactly down to nano units (finer values round away from zero, as
//! upstream rounds up), and canonical output that picks the largest suffix of the
//! parsed format which keeps the number an integer (`1536Mi`, `1500m`, `12e6`).
//! Binary quantities that are fractional or smaller than 1024 print in decimal form.
//!
//! ```
//! use karpenter_api::quantity::Quantity;
//! let q: Quantity = "1.5Gi".parse().unwrap();
//! assert_eq!(q.to_string(), "1536Mi");
//! assert_eq!((q + "512Mi".parse().unwrap()).to_string(), "2Gi");
//! assert_eq!("250m".parse::<Quantity>().unwrap().milli_value(), 250);
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Add, Neg, Sub};
use std::str::FromStr;

/// Nano units per base unit.
const NANO: i128 = 1_000_000_000;

/// The notation a quantity was written in; canonical output keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Powers of 1024: `Ki`, `Mi`, ... `Ei`.
    BinarySi,
    /// Powers of 1000: `n`, `u`, `m`, ``, `k`, `M`, ... `E`.
    DecimalSi,
    /// Scientific: `1e3`, `5E-3`.
    DecimalExponent,
}

/// An exact resource quantity (value in nano units, plus its notation).
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not follow the quantity grammar.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (got {0:?})"
    )]
    Syntax(String),
    /// The suffix is not one Kubernetes knows.
    #[error("unknown quantity suffix {suffix:?} in {text:?}")]
    Suffix {
        /// The unrecognised suffix.
        suffix: String,
        /// The whole input.
        text: String,
    },
    /// The value does not fit (beyond about 10^29).
    #[error("quantity {0:?} is too large")]
    Overflow(String),
}

impl Quantity {
    /// Zero, in decimal notation.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// A whole number of base units in decimal notation (`4` CPUs, `110` pods).
    pub fn from_units(units: i64) -> Self {
        Quantity {
            nanos: i128::from(units) * NANO,
            format: Format::DecimalSi,
        }
    }

    /// Thousandths of a unit in decimal notation (`250` -> `250m`).
    pub fn from_milli(milli: i64) -> Self {
        Quantity {
            nanos: i128::from(milli) * 1_000_000,
            format: Format::DecimalSi,
        }
    }

    /// A number of bytes in binary notation (`1073741824` -> `1Gi`).
    pub fn from_bytes(bytes: i64) -> Self {
        Quantity {
            nanos: i128::from(bytes) * NANO,
            format: Format::BinarySi,
        }
    }

    /// The notation this quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The same value printed in another notation.
    pub fn with_format(self, format: Format) -> Self {
        Quantity { format, ..self }
    }

    /// True when the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The value in nano units (exact).
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in thousandths, rounded up like Kubernetes' `MilliValue`, saturating at i64.
    pub fn milli_value(&self) -> i64 {
        saturate(div_ceil(self.nanos, 1_000_000))
    }

    /// The value in whole units, rounded up like Kubernetes' `Value`, saturating at i64.
    pub fn value(&self) -> i64 {
        saturate(div_ceil(self.nanos, NANO))
    }

    /// The value as a float (for ratios and reports, never for comparisons).
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    /// Multiplies by a whole number, failing on overflow.
    pub fn checked_mul(self, factor: i64) -> Option<Self> {
        Some(Quantity {
            nanos: self.nanos.checked_mul(i128::from(factor))?,
            format: self.format,
        })
    }

    /// Adds, failing on overflow. The result keeps the left operand's notation.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        Some(Quantity {
            nanos: self.nanos.checked_add(other.nanos)?,
            format: self.format,
        })
    }

    /// Subtracts, failing on overflow. The result keeps the left operand's notation.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        Some(Quantity {
            nanos: self.nanos.checked_sub(other.nanos)?,
            format: self.format,
        })
    }

    /// The canonical text, as `kubectl get -o yaml` prints it.
    pub fn canonical(&self) -> String {
        self.to_string()
    }
}

fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Division rounding away from zero (Kubernetes rounds fractions "up").
fn div_ceil(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 { q } else { q + n.signum() }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || QuantityError::Syntax(text.to_string());
        let overflow = || QuantityError::Overflow(text.to_string());
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed != text {
            return Err(syntax());
        }
        let (negative, rest) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(syntax());
        }
        let (format, exp10, exp1024) = parse_suffix(suffix).ok_or_else(|| {
            if suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '+')
            {
                QuantityError::Suffix {
                    suffix: suffix.to_string(),
                    text: text.to_string(),
                }
            } else {
                syntax()
            }
        })?;

        // mantissa * 10^(exp10 - frac_len) * 1024^exp1024, in nano units.
        let digits: String = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 36 {
            return Err(overflow());
        }
        if digits.is_empty() {
            return Ok(Quantity { nanos: 0, format });
        }
        let mantissa: i128 = digits.parse().map_err(|_| syntax())?;
        let mut value = mantissa
            .checked_mul(1024i128.checked_pow(exp1024).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let scale = exp10 - frac_part.len() as i32 + 9;
        if scale >= 0 {
            let factor = 10i128.checked_pow(scale as u32).ok_or_else(overflow)?;
            value = value.checked_mul(factor).ok_or_else(overflow)?;
        } else {
            // Finer than a nano unit: round away from zero, as upstream does.
            value = match 10i128.checked_pow((-scale) as u32) {
                Some(divisor) => div_ceil(value, divisor),
                None => i128::from(value != 0),
            };
        }
        if value > i128::MAX / 1024 {
            return Err(overflow());
        }
        Ok(Quantity {
            nanos: if negative { -value } else { value },
            format,
        })
    }
}

/// Returns (format, power of ten, power of 1024) for a suffix.
fn parse_suffix(suffix: &str) -> Option<(Format, i32, u32)> {
    let decimal = |e| Some((Format::DecimalSi, e, 0));
    let binary = |e| Some((Format::BinarySi, 0, e));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4
            {
                return None;
            }
            Some((Format::DecimalExponent, exponent.parse().ok()?, 0))
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let binary_fits = self.format == Format::BinarySi
            && self.nanos.abs() >= 1024 * NANO
            && self.nanos % NANO == 0;
        if binary_fits {
            let mut mantissa = self.nanos / NANO;
            let mut power = 0;
            while power < 6 && mantissa % 1024 == 0 {
                mantissa /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{mantissa}{suffix}");
        }
        // Decimal: the largest exponent (a multiple of 3, from -9 to 18) keeping an integer.
        let mut mantissa = self.nanos;
        let mut exponent = -9;
        while exponent < 18 && mantissa % 1000 == 0 {
            mantissa /= 1000;
            exponent += 3;
        }
        if self.format == Format::DecimalExponent {
            return if exponent == 0 {
                write!(f, "{mantissa}")
            } else {
                write!(f, "{mantissa}e{exponent}")
            };
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            _ => "E",
        };
        write!(f, "{mantissa}{suffix}")
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::ZERO
    }
}

/// Panics only on overflow beyond ~10^29 units, which no resource reaches; use
/// [`Quantity::checked_add`] for untrusted input.
impl Add for Quantity {
    type Output = Quantity;
    fn add(self, other: Self) -> Self {
        self.checked_add(other).expect("quantity overflow")
    }
}

/// See [`Add`]: use [`Quantity::checked_sub`] for untrusted input.
impl Sub for Quantity {
    type Output = Quantity;
    fn sub(self, other: Self) -> Self {
        self.checked_sub(other).expect("quantity overflow")
    }
}

impl Neg for Quantity {
    type Output = Quantity;
    fn neg(self) -> Self {
        Quantity {
            nanos: -self.nanos,
            format: self.format,
        }
    }
}

impl std::iter::Sum for Quantity {
    fn sum<I: Iterator<Item = Quantity>>(iter: I) -> Self {
        iter.fold(
            Quantity::ZERO,
            |acc, q| if acc.is_zero() { q } else { acc + q },
        )
    }
}

impl TryFrom<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> for Quantity {
    type Error = QuantityError;
    fn try_from(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, Self::Error> {
        q.0.parse()
    }
}

impl From<Quantity> for k8s_openapi::apimachinery::pkg::api::resource::Quantity {
    fn from(q: Quantity) -> Self {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(q.to_string())
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Kubernetes accepts JSON numbers as well as strings for quantities.
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s.parse().map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "a quantity must be a string or a number, got {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// Input -> canonical form, cases from apimachinery's quantity tests.
    #[test]
    fn canonical_forms_match_kubernetes() {
        let cases = [
            ("0", "0"),
            ("0Ki", "0"),
            ("-0", "0"),
            ("1", "1"),
            ("+1", "1"),
            ("-1", "-1"),
            ("1000", "1k"),
            ("1024", "1024"),
            ("1.5", "1500m"),
            ("0.1", "100m"),
            (".5", "500m"),
            ("5.", "5"),
            ("100m", "100m"),
            ("1000m", "1"),
            ("0.0001", "100u"),
            ("1n", "1n"),
            ("1000n", "1u"),
            ("1Ki", "1Ki"),
            ("1024Ki", "1Mi"),
            ("1000Ki", "1000Ki"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("4Gi", "4Gi"),
            ("1Ei", "1Ei"),
            ("1024Ei", "1024Ei"),
            ("0.5Ki", "512"),
            ("1.1Mi", "1153433600m"),
            ("1k", "1k"),
            ("1M", "1M"),
            ("1G", "1G"),
            ("1T", "1T"),
            ("1P", "1P"),
            ("1E", "1E"),
            ("1000E", "1000E"),
            ("1e3", "1e3"),
            ("1E3", "1e3"),
            ("12e6", "12e6"),
            ("1e-3", "1e-3"),
            ("1.5e3", "1500"),
            ("100e-3", "100e-3"),
            ("1e0", "1"),
            ("1.0000000001", "1000000001n"),
            // Finer than nano rounds away from zero, as upstream rounds up.
            ("0.0000000001", "1n"),
            ("1.1e-9", "2e-9"),
            ("-0.0000000001", "-1n"),
            ("007", "7"),
        ];
        for (input, canonical) in cases {
            assert_eq!(q(input).to_string(), canonical, "canonical form of {input}");
        }
    }

    #[test]
    fn rejects_invalid_text_with_the_rule() {
        for bad in [
            "", " 1", "1 ", "Ki", ".", "1.2.3", "1KI", "1K", "1i", "1e", "1e+", "--1", "1m1",
            "abc", "1.5e3.2", "1Gib",
        ] {
            let err = bad.parse::<Quantity>().expect_err(bad);
            let text = err.to_string();
            assert!(text.contains("quantit"), "{bad}: {text}");
        }
        assert!(matches!(
            "1Zi".parse::<Quantity>(),
            Err(QuantityError::Suffix { .. })
        ));
        assert!(matches!(
            "1e99999".parse::<Quantity>(),
            Err(QuantityError::Suffix { .. })
        ));
        assert_eq!(q("0e400"), Quantity::ZERO);
        assert!(matches!(
            "1e400".parse::<Quantity>(),
            Err(QuantityError::Overflow(_))
        ));
        assert!(matches!(
            "99999999999999999999999999999999999999999".parse::<Quantity>(),
            Err(QuantityError::Overflow(_))
        ));
    }

    #[test]
    fn arithmetic_is_exact_and_keeps_the_left_format() {
        assert_eq!((q("1.5Gi") + q("512Mi")).to_string(), "2Gi");
        assert_eq!((q("100m") + q("150m")).to_string(), "250m");
        assert_eq!((q("1") - q("250m")).to_string(), "750m");
        assert_eq!((q("0.1") + q("0.2")), q("300m"));
        assert_eq!((q("4Gi") - q("4Gi")).to_string(), "0");
        assert_eq!(q("1Gi").checked_mul(3).unwrap().to_string(), "3Gi");
        assert_eq!(
            [q("1"), q("500m"), q("1500m")]
                .into_iter()
                .sum::<Quantity>()
                .to_string(),
            "3"
        );
        assert!(q("1Gi") > q("1G"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1000m"), q("1"));
    }

    #[test]
    fn value_accessors_round_up() {
        assert_eq!(q("250m").milli_value(), 250);
        assert_eq!(q("1.5").value(), 2);
        assert_eq!(q("-1.5").value(), -2);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("4Gi").value(), 4 * 1024 * 1024 * 1024);
        assert_eq!(q("1Ei").checked_mul(1 << 20).unwrap().value(), i64::MAX);
        assert!(q("1Ei").checked_mul(1 << 40).is_none());
    }

    #[test]
    fn serde_accepts_strings_and_numbers() {
        let parsed: Vec<Quantity> = serde_json::from_str(r#"["1Gi", 2, 0.5]"#).unwrap();
        assert_eq!(parsed, vec![q("1Gi"), q("2"), q("500m")]);
        assert_eq!(serde_json::to_string(&q("1.5Gi")).unwrap(), r#""1536Mi""#);
        assert!(serde_json::from_str::<Quantity>("true").is_err());
    }
}
