//! PostgreSQL's binary `COPY` format for validated values: the server then
//! stores each value as it arrives instead of parsing its text (`int8in`,
//! `date_in`, `numeric_in`, `timestamptz_in`, …). Every value here has
//! passed `sluice_domain::validation::check_type`, so it parses; each encoder
//! gives exactly the value PostgreSQL's text input would have stored (the
//! adapter's tests compare the two for every column type).

use bytes::{BufMut, BytesMut};
use sluice_domain::schema::ColumnType;
use sluice_domain::validation::{parse_boolean, parse_date};

/// Signature, flags (no OIDs) and an empty header extension.
pub(crate) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The file trailer: a field count of -1.
pub(crate) const TRAILER: i16 = -1;

/// The type OIDs whose binary form [`put_value`] writes, per column type.
pub(crate) fn type_oid(t: ColumnType) -> u32 {
    match t {
        ColumnType::String | ColumnType::Email => TEXT_OID,
        ColumnType::Integer => INT8_OID,
        ColumnType::Number => 1700,
        ColumnType::Boolean => 16,
        ColumnType::Date => 1082,
        ColumnType::Timestamp => 1184,
        ColumnType::Uuid => 2950,
        ColumnType::Json => 3802,
    }
}

/// `text`.
pub(crate) const TEXT_OID: u32 = 25;
/// `bigint`.
pub(crate) const INT8_OID: u32 = 20;

/// A value that did not parse although validation accepted it (a bug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unencodable(pub ColumnType);

/// Starts a row of `fields` fields.
pub(crate) fn begin_row(buf: &mut BytesMut, fields: i16) {
    buf.put_i16(fields);
}

/// SQL NULL.
pub(crate) fn null(buf: &mut BytesMut) {
    buf.put_i32(-1);
}

/// A `bigint`.
pub(crate) fn int8(buf: &mut BytesMut, v: i64) {
    buf.put_i32(8);
    buf.put_i64(v);
}

/// A `text` value. `plain` says the caller knows it holds no NUL byte;
/// otherwise NUL, which `text` cannot hold, becomes U+FFFD (as in the text
/// format's escaping).
pub(crate) fn text(buf: &mut BytesMut, v: &str, plain: bool) {
    if plain || memchr::memchr(0, v.as_bytes()).is_none() {
        put_len(buf, v.len());
        buf.put_slice(v.as_bytes());
        return;
    }
    let at = reserve_len(buf);
    for (i, part) in v.split('\0').enumerate() {
        if i > 0 {
            buf.put_slice("\u{FFFD}".as_bytes());
        }
        buf.put_slice(part.as_bytes());
    }
    patch_len(buf, at);
}

/// A validated value of column type `t`; `scratch` is reused between
/// calls (numeric digits), so encoding allocates nothing per value.
pub(crate) fn put_value(
    buf: &mut BytesMut,
    t: ColumnType,
    v: &str,
    plain: bool,
    scratch: &mut Vec<i16>,
) -> Result<(), Unencodable> {
    let bad = || Unencodable(t);
    match t {
        ColumnType::String | ColumnType::Email => text(buf, v, plain),
        ColumnType::Integer => int8(buf, v.parse().map_err(|_| bad())?),
        ColumnType::Boolean => {
            buf.put_i32(1);
            // Validation leaves `true` or `false`.
            let b = match v {
                "true" => true,
                "false" => false,
                other => parse_boolean(other).ok_or_else(bad)?,
            };
            buf.put_u8(u8::from(b));
        }
        ColumnType::Date => {
            let (y, m, d) = parse_date(v).ok_or_else(bad)?;
            buf.put_i32(4);
            buf.put_i32(i32::try_from(days_since_2000(y, m, d)).map_err(|_| bad())?);
        }
        ColumnType::Timestamp => {
            buf.put_i32(8);
            buf.put_i64(timestamp_micros(v).ok_or_else(bad)?);
        }
        ColumnType::Uuid => {
            buf.put_i32(16);
            let mut hex = v.bytes().filter(|b| *b != b'-');
            for _ in 0..16 {
                let hi = hex.next().and_then(nibble).ok_or_else(bad)?;
                let lo = hex.next().and_then(nibble).ok_or_else(bad)?;
                buf.put_u8(hi << 4 | lo);
            }
        }
        ColumnType::Number => numeric(buf, v, scratch).ok_or_else(bad)?,
        // `jsonb`'s binary form: a version byte (1), then the JSON text,
        // which validation checked and which holds no NUL byte.
        ColumnType::Json => {
            put_len(buf, v.len() + 1);
            buf.put_u8(1);
            buf.put_slice(v.as_bytes());
        }
    }
    Ok(())
}

fn put_len(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

fn reserve_len(buf: &mut BytesMut) -> usize {
    let at = buf.len();
    buf.put_i32(0);
    at
}

fn patch_len(buf: &mut BytesMut, at: usize) {
    let len = buf.len() - at - 4;
    let bytes = i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes();
    if let Some(slot) = buf.get_mut(at..at + 4) {
        slot.copy_from_slice(&bytes);
    }
}

fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// PostgreSQL's epoch for dates and timestamps is 2000-01-01.
fn days_since_2000(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) - 10_957
}

fn two(v: &str, at: usize) -> Option<i64> {
    let b = v.as_bytes();
    let (h, l) = (b.get(at)?, b.get(at + 1)?);
    (h.is_ascii_digit() && l.is_ascii_digit()).then(|| i64::from((h - b'0') * 10 + (l - b'0')))
}

/// Whether PostgreSQL's text input refuses this validated value of type
/// `t` although validation accepts it: a leap second with a fraction
/// (`23:59:60.5`; second 60 alone is taken as the next minute). A batch
/// holding one goes in the text format, so the destination refuses it as
/// it always has.
pub(crate) fn text_input_refuses(t: ColumnType, v: &str) -> bool {
    t == ColumnType::Timestamp
        && two(v, 17) == Some(60)
        && fraction_micros(v.get(19..).unwrap_or("")).is_some_and(|(f, _)| f > 0)
}

/// The fraction of a timestamp's seconds, from `rest` (what follows the
/// seconds), in microseconds as PostgreSQL rounds it, and what follows it.
fn fraction_micros(rest: &str) -> Option<(i64, &str)> {
    match rest.strip_prefix('.') {
        Some(f) => {
            let n = f.bytes().take_while(u8::is_ascii_digit).count();
            // `.ddd` with its dot, as PostgreSQL hands it to strtod.
            let x: f64 = rest.get(..=n)?.parse().ok()?;
            Some(((x * 1e6).round_ties_even() as i64, f.get(n..)?))
        }
        None => Some((0, rest)),
    }
}

/// Microseconds since 2000-01-01 00:00 UTC of a validated RFC 3339
/// timestamp, computed as PostgreSQL's `timestamptz_in` does: the fraction
/// is read as a double and rounded to microseconds with `rint` (ties to
/// even), and second 60 is one second past 59.
fn timestamp_micros(v: &str) -> Option<i64> {
    let (y, m, d) = parse_date(v.get(0..10)?)?;
    let (hour, minute, second) = (two(v, 11)?, two(v, 14)?, two(v, 17)?);
    let (fraction, zone) = fraction_micros(v.get(19..)?)?;
    let offset_minutes = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (two(zone, 1)? * 60 + two(zone, 4)?)
        }
    };
    let seconds =
        days_since_2000(y, m, d) * 86_400 + (hour * 60 + minute - offset_minutes) * 60 + second;
    seconds.checked_mul(1_000_000)?.checked_add(fraction)
}

/// A validated decimal number in `numeric`'s binary form: digit count,
/// weight (of the first base-10,000 digit), sign, display scale, digits.
/// Zero is positive, and the display scale is the one `numeric_in` keeps
/// (digits after the point, less the exponent, at least 0).
fn numeric(buf: &mut BytesMut, v: &str, groups: &mut Vec<i16>) -> Option<()> {
    let (negative, s) = match v.as_bytes().first() {
        Some(b'-') => (true, v.get(1..)?),
        Some(b'+') => (false, v.get(1..)?),
        _ => (false, v),
    };
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (s.get(..i)?, s.get(i + 1..)?.parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let dscale = (i64::try_from(frac.len()).ok()? - exponent).max(0);
    // The decimal digits, and how many of them stand before the point.
    let all = || int.bytes().chain(frac.bytes());
    let leading = all().take_while(|b| *b == b'0').count();
    let total = int.len() + frac.len();
    let trailing = all().rev().take_while(|b| *b == b'0').count();
    groups.clear();
    if leading < total {
        let significant = total - leading - trailing;
        // Exponent (power of ten) of the first significant digit.
        let first = i64::try_from(int.len()).ok()? - 1 - i64::try_from(leading).ok()? + exponent;
        let weight = first.div_euclid(4);
        // Zeros in front so that the first digit lands in its group.
        let pad = usize::try_from(weight * 4 + 3 - first).ok()?;
        let mut acc: i16 = 0;
        let mut filled = pad;
        for b in all().skip(leading).take(significant) {
            acc = acc * 10 + i16::from(b - b'0');
            filled += 1;
            if filled == 4 {
                groups.push(acc);
                acc = 0;
                filled = 0;
            }
        }
        if filled > 0 {
            for _ in filled..4 {
                acc *= 10;
            }
            groups.push(acc);
        }
        let n = i16::try_from(groups.len()).ok()?;
        buf.put_i32(8 + 2 * i32::from(n));
        buf.put_i16(n);
        buf.put_i16(i16::try_from(weight).ok()?);
        buf.put_u16(if negative { 0x4000 } else { 0 });
    } else {
        buf.put_i32(8);
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(0);
    }
    buf.put_u16(u16::try_from(dscale).ok()?);
    for g in groups.iter() {
        buf.put_i16(*g);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_parts(v: &str) -> (i16, i16, u16, u16, Vec<i16>) {
        let mut buf = BytesMut::new();
        let mut scratch = Vec::new();
        numeric(&mut buf, v, &mut scratch).expect("encodes");
        let b = &buf[..];
        let at = |i: usize| i16::from_be_bytes([b[i], b[i + 1]]);
        let n = at(4);
        let digits = (0..n as usize).map(|i| at(12 + 2 * i)).collect();
        (n, at(6), at(8) as u16, at(10) as u16, digits)
    }

    #[test]
    fn numerics_in_base_ten_thousand() {
        assert_eq!(numeric_parts("0"), (0, 0, 0, 0, vec![]));
        assert_eq!(numeric_parts("-0.00"), (0, 0, 0, 2, vec![]));
        assert_eq!(numeric_parts("123.45"), (2, 0, 0, 2, vec![123, 4500]));
        assert_eq!(
            numeric_parts("-12345.6"),
            (3, 1, 0x4000, 1, vec![1, 2345, 6000])
        );
        assert_eq!(numeric_parts("0.0001"), (1, -1, 0, 4, vec![1]));
        assert_eq!(numeric_parts("0.00001"), (1, -2, 0, 5, vec![1000]));
        assert_eq!(numeric_parts("1e4"), (1, 1, 0, 0, vec![1]));
        assert_eq!(numeric_parts("1.5e-3"), (1, -1, 0, 4, vec![15]));
        assert_eq!(numeric_parts("10000"), (1, 1, 0, 0, vec![1]));
        assert_eq!(numeric_parts(".5"), (1, -1, 0, 1, vec![5000]));
    }

    #[test]
    fn dates_and_timestamps_from_2000() {
        assert_eq!(days_since_2000(2000, 1, 1), 0);
        assert_eq!(days_since_2000(1999, 12, 31), -1);
        assert_eq!(days_since_2000(2000, 3, 1), 60);
        assert_eq!(timestamp_micros("2000-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            timestamp_micros("2000-01-01T01:00:00.5+01:00"),
            Some(500_000)
        );
        assert_eq!(timestamp_micros("2000-01-01T00:00:60Z"), Some(60_000_000));
        assert!(text_input_refuses(
            ColumnType::Timestamp,
            "2016-12-31T23:59:60.5Z"
        ));
        assert!(!text_input_refuses(
            ColumnType::Timestamp,
            "2016-12-31T23:59:60.0000001Z"
        ));
        assert!(!text_input_refuses(
            ColumnType::Timestamp,
            "2016-12-31T23:59:60Z"
        ));
        assert_eq!(
            timestamp_micros("1999-12-31T23:59:59.999999-00:30"),
            Some(1_800_000_000 - 1)
        );
    }

    #[test]
    fn text_without_nul() {
        let mut buf = BytesMut::new();
        text(&mut buf, "a\0b", false);
        assert_eq!(&buf[..4], &5_i32.to_be_bytes());
        assert_eq!(&buf[4..], "a\u{FFFD}b".as_bytes());
    }
}
