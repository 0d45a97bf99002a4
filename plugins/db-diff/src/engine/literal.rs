//! SQL text for identifiers and values that SQLite (any version, through the `sqlite3`
//! shell) reads back exactly.

use super::Value;

/// `name` as a quoted identifier: `"a""b"` for `a"b`.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as an SQL literal (or constant expression) that evaluates to exactly this value
/// with this storage class.
pub fn literal(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_string(),
        Value::Integer(i) => integer(*i),
        Value::Real(r) => real(*r),
        Value::Text(t) => text(t),
        Value::Blob(b) => blob(b),
        Value::TextBytes(b) => format!("CAST({} AS TEXT)", blob(b)),
    }
}

/// An integer; `i64::MIN` as an expression, since `9223372036854775808` alone overflows.
fn integer(i: i64) -> String {
    if i == i64::MIN {
        "(-9223372036854775807-1)".to_string()
    } else {
        i.to_string()
    }
}

/// Text as `'…'` with quotes doubled; control characters (which a shell or terminal may
/// alter: CR, tabs, newlines…) as `char(n)` pieces joined with `||`.
fn text(t: &str) -> String {
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    for c in t.chars() {
        if c.is_control() {
            if !current.is_empty() {
                pieces.push(format!("'{}'", current.replace('\'', "''")));
                current.clear();
            }
            pieces.push(format!("char({})", u32::from(c)));
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() || pieces.is_empty() {
        pieces.push(format!("'{}'", current.replace('\'', "''")));
    }
    if pieces.len() == 1 {
        pieces.remove(0)
    } else {
        format!("({})", pieces.join("||"))
    }
}

/// A blob as `X'hex'`.
fn blob(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2 + 3);
    s.push_str("X'");
    for byte in b {
        s.push_str(&format!("{byte:02X}"));
    }
    s.push('\'');
    s
}

/// The largest power of two written as one integer literal in [`real`]'s expressions.
const STEP: i32 = 62;

/// A REAL that reads back bit for bit. SQLite's decimal-to-double conversion is not
/// correctly rounded in every version (3.40 misreads about 0.3 % of shortest round-trip
/// decimals), so a decimal is written only when it is exact: its value equals the double
/// exactly (1.0, 0.5, 1e20, -0.0). Every other double is written as its exact binary form,
/// `(CAST(m AS REAL)*2^k…)` or `(CAST(m AS REAL)/2^k…)`, in which every step is an exact
/// IEEE operation, followed by the shortest decimal as a comment. Infinities are
/// `9e999`/`-9e999`; NaN (which SQLite never stores) is NULL.
pub fn real(r: f64) -> String {
    if r.is_nan() {
        return "NULL".to_string();
    }
    if r.is_infinite() {
        return if r > 0.0 { "9e999" } else { "-9e999" }.to_string();
    }
    let shortest = format!("{r:?}");
    if decimal_is_exact(r, &shortest) {
        return shortest;
    }
    // r = mantissa * 2^exp with an integer mantissa below 2^53.
    let bits = r.to_bits();
    let negative = bits >> 63 == 1;
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (mut mantissa, mut exp) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    };
    while mantissa != 0 && mantissa & 1 == 0 {
        mantissa >>= 1;
        exp += 1;
    }
    let sign = if negative { "-" } else { "" };
    let mut expr = format!("(CAST({sign}{mantissa} AS REAL)");
    let (op, mut left) = if exp >= 0 { ('*', exp) } else { ('/', -exp) };
    while left > 0 {
        let step = left.min(STEP);
        expr.push(op);
        expr.push_str(&(1u64 << step).to_string());
        left -= step;
    }
    expr.push_str(&format!(" /*{shortest}*/)"));
    expr
}

/// Whether the decimal `shortest` (Rust's shortest round-trip form of `r`) denotes exactly
/// `r`, with at most 27 as the decimal exponent's size (10^27 is the largest power of ten
/// SQLite's long-double parser holds exactly), so that any parser gets it right.
fn decimal_is_exact(r: f64, shortest: &str) -> bool {
    let body = shortest.trim_start_matches('-');
    let (mantissa, exp10) = match body.split_once('e') {
        Some((m, e)) => match e.parse::<i32>() {
            Ok(e) => (m, e),
            Err(_) => return false,
        },
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    let Ok(digits) = digits.parse::<u128>() else {
        return false;
    };
    // value = digits * 10^e10
    let e10 = exp10 - frac_part.len() as i32;
    if !(-27..=27).contains(&e10) {
        return false;
    }
    if digits == 0 {
        return true;
    }
    // |r| = m * 2^q exactly.
    let bits = r.abs().to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    let (m, q) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    };
    let m = u128::from(m);
    if e10 >= 0 {
        // digits * 10^e10 == m * 2^q ?
        let Some(lhs) = 10u128
            .checked_pow(e10 as u32)
            .and_then(|p| p.checked_mul(digits))
        else {
            return false;
        };
        if q >= 0 {
            q < 75
                && m.checked_shl(q as u32)
                    .is_some_and(|v| v >> q == m && v == lhs)
        } else {
            (-q) < 128
                && lhs
                    .checked_shl((-q) as u32)
                    .is_some_and(|v| v >> (-q) == lhs && v == m)
        }
    } else {
        // digits == m * 2^q * 10^k, k = -e10  <=>  digits == m * 5^k * 2^(q+k)
        let k = -e10;
        let Some(base) = 5u128.checked_pow(k as u32).and_then(|p| p.checked_mul(m)) else {
            return false;
        };
        let shift = q + k;
        if shift >= 0 {
            shift < 128
                && base
                    .checked_shl(shift as u32)
                    .is_some_and(|v| v >> shift == base && v == digits)
        } else {
            (-shift) < 128
                && digits
                    .checked_shl((-shift) as u32)
                    .is_some_and(|v| v >> (-shift) == digits && v == base)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled() {
        assert_eq!(ident("t"), "\"t\"");
        assert_eq!(ident("a\"b c"), "\"a\"\"b c\"");
    }

    #[test]
    fn exact_decimals_stay_readable() {
        assert_eq!(real(1.0), "1.0");
        assert_eq!(real(-0.0), "-0.0");
        assert_eq!(real(0.5), "0.5");
        assert_eq!(real(1.25e20), "1.25e20");
        assert_eq!(real(123.0), "123.0");
    }

    #[test]
    fn inexact_decimals_become_exact_binary_expressions() {
        let s = real(0.1);
        assert!(s.starts_with("(CAST(3602879701896397 AS REAL)/"), "{s}");
        assert!(s.ends_with("/*0.1*/)"), "{s}");
        assert!(real(0.1 + 0.2).contains("0.30000000000000004"));
        assert!(real(5e-324).starts_with("(CAST(1 AS REAL)/"));
        assert!(real(-1.7976931348623157e308).starts_with("(CAST(-"));
        assert_eq!(real(f64::INFINITY), "9e999");
        assert_eq!(real(f64::NAN), "NULL");
    }

    #[test]
    fn text_escapes_quotes_and_control_characters() {
        assert_eq!(text("it's"), "'it''s'");
        assert_eq!(text(""), "''");
        assert_eq!(text("a\nb"), "('a'||char(10)||'b')");
        assert_eq!(text("\r"), "char(13)");
        assert_eq!(text("é☃"), "'é☃'");
        assert_eq!(blob(&[0, 255]), "X'00FF'");
        assert_eq!(integer(i64::MIN), "(-9223372036854775807-1)");
    }
}
