//! Durations and sizes as people write them in a manifest or on the command line (`"10s"`,
//! `"500ms"`, `"64MiB"`), each checked against the range its setting accepts, so that no value
//! can overflow a deadline or an allocation later: bad input is a one-line error, never a
//! panic.

use std::ops::RangeInclusive;
use std::time::Duration;

/// Parses a duration: a number of seconds (`30`, `2.5`) or a number with units, as
/// [humantime](https://docs.rs/humantime) reads them (`"500ms"`, `"10s"`, `"2m"`, `"1h 30m"`),
/// within `range`.
///
/// ```
/// use std::time::Duration;
/// let range = Duration::from_millis(1)..=Duration::from_secs(3600);
/// assert_eq!(mixio_serve::units::duration("1m 30s", &range), Ok(Duration::from_secs(90)));
/// assert!(mixio_serve::units::duration("1e30", &range).is_err());
/// ```
pub fn duration(text: &str, range: &RangeInclusive<Duration>) -> Result<Duration, String> {
    let trimmed = text.trim();
    let seconds = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let parsed = if seconds {
        // `try_from_secs_f64` refuses what does not fit a `Duration`.
        trimmed.parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok())
    } else {
        humantime::parse_duration(trimmed).ok()
    };
    let Some(value) = parsed else {
        return Err(format!("\"{text}\" is not a duration like \"10s\", \"500ms\" or \"2m\""));
    };
    in_range(value, range, |d| humantime::format_duration(*d).to_string())
        .map_err(|bound| format!("\"{text}\" is {bound}"))
}

/// Parses a size: a number of bytes (`1048576`) or a number with a unit (`"512KiB"`, `"64MiB"`,
/// `"1GiB"`, `"10MB"`), as [bytesize](https://docs.rs/bytesize) reads them, within `range`.
///
/// ```
/// let range = 1..=u64::MAX;
/// assert_eq!(mixio_serve::units::size("64MiB", &range), Ok(64 << 20));
/// assert!(mixio_serve::units::size("64 parsecs", &range).is_err());
/// ```
pub fn size(text: &str, range: &RangeInclusive<u64>) -> Result<u64, String> {
    let trimmed = text.trim();
    // bytesize multiplies in floating point, which saturates instead of failing: a value past
    // u64 (or not finite) is refused here instead.
    let number = trimmed.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    // A fraction of a byte is no size: a number with a fraction needs a unit larger than a byte.
    let unit = trimmed[number..].trim();
    let whole = !trimmed.contains('.') || !(unit.is_empty() || unit.eq_ignore_ascii_case("b"));
    let value = match trimmed.parse::<bytesize::ByteSize>() {
        Ok(value) if number <= 20 && whole && value.as_u64() < u64::MAX => value.as_u64(),
        _ => {
            return Err(format!(
                "\"{text}\" is not a size like \"64MiB\", \"512KiB\" or \"10MB\" (at most 16 EiB)"
            ));
        }
    };
    in_range(value, range, |n| bytesize::ByteSize(*n).display().iec().to_string())
        .map_err(|bound| format!("\"{text}\" is {bound}"))
}

/// Parses a count (a whole number) within `range`.
pub fn count(text: &str, range: &RangeInclusive<u64>) -> Result<u64, String> {
    let value = text.trim().parse::<u64>().map_err(|_| format!("\"{text}\" is not a whole number"))?;
    in_range(value, range, u64::to_string).map_err(|bound| format!("\"{text}\" is {bound}"))
}

/// `value` if it is within `range`; else which bound it passes, in words.
pub(crate) fn in_range<T: PartialOrd>(
    value: T,
    range: &RangeInclusive<T>,
    show: impl Fn(&T) -> String,
) -> Result<T, String> {
    if value < *range.start() {
        Err(format!("less than the least allowed, {}", show(range.start())))
    } else if value > *range.end() {
        Err(format!("more than the most allowed, {}", show(range.end())))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// Every kind of input a person or an attacker might write: each gives a value or an error,
    /// never a panic, and the value is always within range.
    #[test]
    fn durations_are_parsed_or_refused_in_words() {
        let range = Duration::from_millis(1)..=DAY;
        let valid = [
            ("30", Duration::from_secs(30)),
            (" 30 ", Duration::from_secs(30)),
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("2m", Duration::from_secs(120)),
            ("1h 30m", Duration::from_secs(5400)),
            ("24h", DAY),
            ("1ms", Duration::from_millis(1)),
            ("2.5", Duration::from_millis(2500)),
            ("0.001", Duration::from_millis(1)),
        ];
        for (text, expected) in valid {
            assert_eq!(duration(text, &range), Ok(expected), "{text}");
        }
        let invalid = [
            "",
            " ",
            "-1",
            "-1s",
            "1e30",
            "1e300",
            "1e400",
            "1.5.5",
            ".",
            "99999999999999999999.5",
            "0.0001",
            "NaN",
            "inf",
            "0x10",
            "10 parsecs",
            "s",
            "18446744073709551616",
            "18446744073709551615s",
            "99999999999999999999999h",
            "25h",
            "0",
            "0s",
            "500us",
            "1d 1s",
            "\0",
            "１０s",
            "9223372036854775807y",
        ];
        for text in invalid {
            let error = duration(text, &range).expect_err(text);
            assert!(error.contains(&format!("\"{text}\"")), "{text}: {error}");
        }
        assert!(duration("25h", &range).unwrap_err().contains("most allowed, 1day"), "names the bound");
        // Whatever the digits, a value in range or an error.
        for digits in 1..=40 {
            for unit in ["", "ns", "ms", "s", "m", "h", "d", "w", "y"] {
                let text = format!("{}{unit}", "9".repeat(digits));
                if let Ok(d) = duration(&text, &range) {
                    assert!(range.contains(&d), "{text}");
                }
            }
        }
    }

    #[test]
    fn sizes_are_parsed_or_refused_in_words() {
        let range = 1..=(4 << 30);
        let valid = [
            ("1048576", 1 << 20),
            ("512KiB", 512 << 10),
            ("64MiB", 64 << 20),
            ("64 MiB", 64 << 20),
            ("1GiB", 1 << 30),
            ("4GiB", 4 << 30),
            ("10MB", 10_000_000),
            ("100B", 100),
            ("1.5KiB", 1536),
        ];
        for (text, expected) in valid {
            assert_eq!(size(text, &range), Ok(expected), "{text}");
        }
        let invalid = [
            "",
            "0",
            "-1",
            "-1MiB",
            "1.5",
            "0.5",
            "1.5B",
            "1e30",
            "NaN",
            "inf",
            "infMiB",
            "5XB",
            "64 parsecs",
            "1024GiB",
            "5GiB",
            "18446744073709551616",
            "18446744073709551615",
            "99999999999999999999999999GiB",
            "1.0e10",
            "..",
            "1..5MiB",
            "\0",
            "4GiB\n",
        ];
        for text in invalid {
            if text == "4GiB\n" {
                continue; // trimmed: valid
            }
            let error = size(text, &range).expect_err(text);
            assert!(error.contains(&format!("\"{text}\"")), "{text}: {error}");
        }
        assert!(size("1024GiB", &range).unwrap_err().contains("most allowed, 4.0 GiB"));
        for digits in 1..=40 {
            for unit in ["", "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "KB", "EB"] {
                let text = format!("{}{unit}", "9".repeat(digits));
                if let Ok(n) = size(&text, &range) {
                    assert!(range.contains(&n), "{text}");
                }
            }
        }
    }

    #[test]
    fn counts_are_whole_numbers_in_range() {
        let range = 1..=1_000_000;
        assert_eq!(count("64", &range), Ok(64));
        for text in ["0", "-1", "1.5", "1e6", "", "2000000", "18446744073709551616", "ten"] {
            assert!(count(text, &range).unwrap_err().contains(&format!("\"{text}\"")), "{text}");
        }
    }
}
