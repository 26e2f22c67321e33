//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`) as integers: CPU in millicores,
//! everything else in milli-units, rounded up as apimachinery's `MilliValue` does. The
//! scheduler compares requests against allocatable with these, so the arithmetic is exact
//! (integers, not floats).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The value of `q` in thousandths of its unit (`"250m"` -> 250, `"1Ki"` -> 1_024_000);
/// None if it is not a valid quantity.
pub fn parse_milli(q: &str) -> Option<i128> {
    let s = q.trim();
    if s.is_empty() {
        return None;
    }
    let (negative, s) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    if num.is_empty() || num == "." || num.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    if frac_part.len() > 18 || int_part.len() > 18 {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let scale = frac_part.len() as u32;
    // value = mantissa / 10^scale * multiplier; multiplier = num/den (with powers of ten
    // as exponents so "1e-3" and "5m" stay exact).
    let (bin_pow, dec_exp): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        e if e.starts_with(['e', 'E']) => {
            (0, e[1..].parse::<i32>().ok().filter(|x| x.abs() <= 30)?)
        }
        _ => return None,
    };
    // milli = mantissa * 2^bin_pow * 10^(dec_exp + 3) / 10^scale, rounded up.
    let mut num = mantissa.checked_mul(1i128.checked_shl(bin_pow)?)?;
    let exp = dec_exp + 3 - scale as i32;
    let value = if exp >= 0 {
        num = num.checked_mul(10i128.checked_pow(exp as u32)?)?;
        num
    } else {
        let den = 10i128.checked_pow((-exp) as u32)?;
        (num + den - 1) / den
    };
    Some(if negative { -value } else { value })
}

/// A quantity's milli-value, 0 when it is missing or invalid (the apiserver validates them).
pub fn milli(q: &Quantity) -> i128 {
    parse_milli(&q.0).unwrap_or(0)
}

/// A quantity's whole value, rounded up (bytes for memory, pods for `pods`).
pub fn value(q: &Quantity) -> i128 {
    let m = milli(q);
    if m >= 0 {
        (m + 999) / 1000
    } else {
        m / 1000
    }
}

/// Resources by name, in milli-units (cpu in millicores, memory in milli-bytes).
pub type ResourceList = BTreeMap<String, i128>;

/// A resource map from the API's form.
pub fn resource_list(m: Option<&BTreeMap<String, Quantity>>) -> ResourceList {
    m.map(|m| m.iter().map(|(k, q)| (k.clone(), milli(q))).collect())
        .unwrap_or_default()
}

/// `a += b` for every resource.
pub fn add(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) += v;
    }
}

/// `a = max(a, b)` for every resource.
pub fn max(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        let e = a.entry(k.clone()).or_insert(0);
        if *v > *e {
            *e = *v;
        }
    }
}

/// `a -= b` for every resource.
pub fn sub(a: &mut ResourceList, b: &ResourceList) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) -= v;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_exactly() {
        let cases = [
            ("1", 1000),
            ("250m", 250),
            ("0.5", 500),
            ("1.5", 1500),
            ("1Ki", 1_024_000),
            ("1Mi", 1_048_576_000),
            ("1.5Gi", 1_610_612_736_000),
            ("2k", 2_000_000),
            ("1M", 1_000_000_000),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("100n", 1), // rounded up to a thousandth, as MilliValue does
            ("0", 0),
            ("-1", -1000),
            ("+2", 2000),
            (".5", 500),
            ("110", 110_000),
        ];
        for (q, want) in cases {
            assert_eq!(parse_milli(q), Some(want), "{q}");
        }
        for bad in ["", "m", "1.2.3", "1Qi", "1ee", "abc", ".", "1e99"] {
            assert_eq!(parse_milli(bad), None, "{bad}");
        }
    }

    #[test]
    fn values_round_up() {
        assert_eq!(value(&Quantity("1500m".into())), 2);
        assert_eq!(value(&Quantity("64Mi".into())), 67_108_864);
        assert_eq!(value(&Quantity("junk".into())), 0);
    }

    #[test]
    fn lists_add_and_compare() {
        let mut a: ResourceList = [("cpu".to_string(), 100)].into();
        add(
            &mut a,
            &[("cpu".to_string(), 50), ("memory".to_string(), 7)].into(),
        );
        assert_eq!(a["cpu"], 150);
        max(&mut a, &[("cpu".to_string(), 500)].into());
        assert_eq!(a["cpu"], 500);
        sub(&mut a, &[("memory".to_string(), 7)].into());
        assert_eq!(a["memory"], 0);
    }
}
