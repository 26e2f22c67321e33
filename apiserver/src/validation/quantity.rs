//! Kubernetes resource quantities (apimachinery `resource.ParseQuantity`), as exact values in
//! nano-units (what Kubernetes rounds to), saturating at the bounds of `i128`.

/// The error Kubernetes gives for a malformed quantity.
pub const ERR_FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const ERR_SUFFIX: &str = "unable to parse quantity's suffix";
const ERR_NUMERIC: &str = "unable to parse numeric part of quantity";

/// A parsed quantity in units of 10^-9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(pub i128);

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    pub fn is_integer(self) -> bool {
        self.0 % NANO == 0
    }

    pub fn saturating_add(self, other: Quantity) -> Quantity {
        Quantity(self.0.saturating_add(other.0))
    }
}

const NANO: i128 = 1_000_000_000;

/// Parses a quantity as Kubernetes does (including its tolerance of `1.`, `.5`, `+`).
pub fn parse(s: &str) -> Result<Quantity, &'static str> {
    if s.is_empty() {
        return Err(ERR_FORMAT);
    }
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut negative = false;
    match b[0] {
        b'-' => {
            negative = true;
            pos += 1;
        }
        b'+' => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Quantity::ZERO);
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = &s[num_start..pos];
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let d_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[d_start..pos];
    }
    // The suffix: letters from the suffix alphabet, an optional sign, digits.
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(ERR_FORMAT);
    }
    let suffix = &s[suffix_start..];
    let (exp2, exp10): (u32, i64) = match suffix {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            (0, s[1..].parse::<i64>().map_err(|_| ERR_SUFFIX)?)
        }
        _ => return Err(ERR_SUFFIX),
    };
    // value = digits * 10^(exp10 - len(denom) + 9) * 2^exp2, in nano-units, rounded up.
    let digits = format!("{num}{denom}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: i128 = 0;
    let mut saturated = false;
    for c in digits.bytes() {
        match mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c - b'0')))
        {
            Some(m) => mantissa = m,
            None => {
                saturated = true;
                break;
            }
        }
    }
    if digits.is_empty() && num.is_empty() && denom.is_empty() && suffix.is_empty() {
        // e.g. "-" or "+" alone: Kubernetes reads zero.
        return Ok(Quantity::ZERO);
    }
    let scale = exp10
        .checked_sub(denom.len() as i64)
        .and_then(|e| e.checked_add(9))
        .ok_or(ERR_NUMERIC)?;
    let mut value = mantissa;
    if !saturated && value != 0 {
        if scale >= 0 {
            for _ in 0..scale {
                match value.checked_mul(10) {
                    Some(v) => value = v,
                    None => {
                        saturated = true;
                        break;
                    }
                }
            }
        } else {
            let mut rem = false;
            for _ in 0..(-scale).min(60) {
                rem |= value % 10 != 0;
                value /= 10;
            }
            if -scale > 60 {
                rem |= value != 0;
                value = 0;
            }
            if rem {
                value += 1;
            }
        }
        if !saturated {
            match value.checked_mul(1i128 << exp2) {
                Some(v) => value = v,
                None => saturated = true,
            }
        }
    }
    if saturated {
        value = i128::MAX;
    }
    Ok(Quantity(if negative { -value } else { value }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> i128 {
        parse(s).expect(s).0
    }

    #[test]
    fn parses_suffixes() {
        assert_eq!(p("1"), NANO);
        assert_eq!(p("100m"), NANO / 10);
        assert_eq!(p("0.1"), NANO / 10);
        assert_eq!(p("1k"), 1000 * NANO);
        assert_eq!(p("1Ki"), 1024 * NANO);
        assert_eq!(p("1.5Gi"), 1_610_612_736 * NANO);
        assert_eq!(p("1e3"), 1000 * NANO);
        assert_eq!(p("1E-3"), NANO / 1000);
        assert_eq!(p("-2"), -2 * NANO);
        assert_eq!(p("0"), 0);
        assert_eq!(p("1n"), 1);
        assert_eq!(p("0.1n"), 1);
        assert_eq!(p(".5"), NANO / 2);
        assert_eq!(p("1."), NANO);
        assert_eq!(p("1000m"), p("1"));
        assert_eq!(p("1E"), 1_000_000_000_000_000_000 * NANO);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse(""), Err(ERR_FORMAT));
        assert_eq!(parse("abc"), Err(ERR_FORMAT));
        assert_eq!(parse("1x"), Err(ERR_FORMAT));
        assert_eq!(parse("1 Gi"), Err(ERR_FORMAT));
        assert_eq!(parse("1KK"), Err(ERR_SUFFIX));
        assert_eq!(parse("1e"), Err(ERR_SUFFIX));
    }
}
