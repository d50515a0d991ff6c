//! String functions: `format` with .NET format specifiers, base64 and data
//! URIs, `uri` and percent-encoding, padding, searching, and the hashing
//! functions (`uniqueString`, `guid`) whose outputs must equal Azure's.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::{arity, equals, hash, int, string, text, text_fits, Scope};

pub(super) fn call(scope: &Scope, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let a = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    let s = |i: usize| string(name, &a(i));
    Some(match name {
        "format" => arity(name, args, 1, usize::MAX).and_then(|_| format(args)),
        "tolower" => arity(name, args, 1, 1).and_then(|_| s(0).map(|x| json!(x.to_lowercase()))),
        "toupper" => arity(name, args, 1, 1).and_then(|_| s(0).map(|x| json!(x.to_uppercase()))),
        "trim" => arity(name, args, 1, 1).and_then(|_| s(0).map(|x| json!(x.trim()))),
        "string" => arity(name, args, 1, 1).map(|_| json!(text(&a(0)))),
        "replace" => arity(name, args, 3, 3).and_then(|_| {
            let (x, old, new) = (s(0)?, s(1)?, s(2)?);
            // An empty `old` matches between every two characters.
            let hits = if old.is_empty() {
                x.chars().count() + 1
            } else {
                x.matches(old.as_str()).count()
            };
            text_fits(name, x.len().saturating_add(hits.saturating_mul(new.len())))?;
            Ok(json!(x.replace(&old, &new)))
        }),
        "split" => arity(name, args, 2, 2).and_then(|_| {
            let x = s(0)?;
            let seps: Vec<String> = match a(1) {
                Value::Array(v) => v.iter().map(text).collect(),
                sep => vec![text(&sep)],
            };
            Ok(json!(split_any(&x, &seps)))
        }),
        "substring" => arity(name, args, 2, 3).and_then(|_| {
            let x: Vec<char> = s(0)?.chars().collect();
            let start = int(name, &a(1))?;
            let len = if args.len() == 3 {
                int(name, &a(2))?
            } else {
                x.len() as i64 - start
            };
            if start < 0 || len < 0 || start.saturating_add(len) as usize > x.len() {
                return Err(format!(
                    "the index and length parameters must refer to a location within the string: \
                     startIndex {start}, length {len}, string length {}",
                    x.len()
                ));
            }
            Ok(json!(x[start as usize..(start + len) as usize]
                .iter()
                .collect::<String>()))
        }),
        "startswith" => arity(name, args, 2, 2).and_then(|_| {
            Ok(json!(s(0)?
                .to_lowercase()
                .starts_with(&s(1)?.to_lowercase())))
        }),
        "endswith" => arity(name, args, 2, 2)
            .and_then(|_| Ok(json!(s(0)?.to_lowercase().ends_with(&s(1)?.to_lowercase())))),
        "indexof" | "lastindexof" => arity(name, args, 2, 2).map(|_| {
            let last = name == "lastindexof";
            json!(match (a(0), a(1)) {
                (Value::String(x), v) => {
                    let (x, v) = (x.to_lowercase(), text(&v).to_lowercase());
                    let found = if last { x.rfind(&v) } else { x.find(&v) };
                    found.map(|i| x[..i].chars().count() as i64).unwrap_or(-1)
                }
                (Value::Array(items), v) => {
                    let mut hits = items
                        .iter()
                        .enumerate()
                        .filter(|(_, i)| equals(i, &v))
                        .map(|(i, _)| i as i64);
                    (if last { hits.next_back() } else { hits.next() }).unwrap_or(-1)
                }
                _ => -1,
            })
        }),
        "padleft" => arity(name, args, 2, 3).and_then(|_| {
            let x = text(&a(0));
            let width = int(name, &a(1))?.max(0) as usize;
            let pad = if args.len() == 3 { s(2)? } else { " ".into() };
            let mut pad = pad.chars();
            let (Some(c), None) = (pad.next(), pad.next()) else {
                return Err("padLeft: the padding character must be one character".into());
            };
            let n = x.chars().count();
            text_fits(
                name,
                width.saturating_sub(n).saturating_mul(c.len_utf8()) + x.len(),
            )?;
            Ok(json!(format!(
                "{}{x}",
                c.to_string().repeat(width.saturating_sub(n))
            )))
        }),
        "base64" => arity(name, args, 1, 1).and_then(|_| Ok(json!(B64.encode(s(0)?)))),
        "base64tostring" => {
            arity(name, args, 1, 1).and_then(|_| decode64(&s(0)?).map(Value::String))
        }
        "base64tojson" => arity(name, args, 1, 1).and_then(|_| {
            serde_json::from_str(&decode64(&s(0)?)?)
                .map_err(|e| format!("base64ToJson: not JSON: {e}"))
        }),
        "datauri" => arity(name, args, 1, 1).map(|_| {
            json!(format!(
                "data:text/plain;charset=utf8;base64,{}",
                B64.encode(text(&a(0)))
            ))
        }),
        "datauritostring" => arity(name, args, 1, 1).and_then(|_| {
            let x = s(0)?;
            let (head, data) = x.split_once(',').ok_or("dataUriToString: not a data URI")?;
            if head.ends_with(";base64") {
                decode64(data).map(Value::String)
            } else {
                Ok(json!(percent_decode(data)))
            }
        }),
        "uri" => arity(name, args, 2, 2).and_then(|_| Ok(json!(uri(&s(0)?, &s(1)?)))),
        "uricomponent" => arity(name, args, 1, 1).and_then(|_| Ok(json!(percent_encode(&s(0)?)))),
        "uricomponenttostring" => {
            arity(name, args, 1, 1).and_then(|_| Ok(json!(percent_decode(&s(0)?))))
        }
        "uniquestring" => arity(name, args, 1, usize::MAX)
            .and_then(|_| strings_only(name, args).map(|p| json!(hash::unique_string(&p)))),
        "guid" => arity(name, args, 1, usize::MAX)
            .and_then(|_| strings_only(name, args).map(|p| json!(hash::guid(&p)))),
        "newguid" => arity(name, args, 0, 0).map(|_| {
            // Random for the user, reproducible for the planner: the
            // daemon draws the nonce once per deployment.
            json!(hash::guid(&[format!("newGuid-{}", scope.nonce)]))
        }),
        "utcnow" => arity(name, args, 0, 1).and_then(|_| {
            let f = if args.is_empty() {
                "yyyyMMddTHHmmssZ".to_string()
            } else {
                s(0)?
            };
            Ok(json!(format_time(scope.now_unix, &f)))
        }),
        _ => return None,
    })
}

fn strings_only(name: &str, args: &[Value]) -> Result<Vec<String>, String> {
    args.iter()
        .map(|v| {
            v.as_str().map(str::to_string).ok_or_else(|| {
                format!("the template function '{name}' takes only strings; {v} is not one")
            })
        })
        .collect()
}

fn decode64(s: &str) -> Result<String, String> {
    let bytes = B64
        .decode(s.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "the decoded bytes are not UTF-8 text".into())
}

fn split_any(s: &str, seps: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let next = seps
            .iter()
            .filter(|p| !p.is_empty())
            .filter_map(|p| rest.find(p.as_str()).map(|i| (i, p.len())))
            .min();
        match next {
            Some((i, len)) => {
                out.push(rest[..i].to_string());
                rest = &rest[i + len..];
            }
            None => {
                out.push(rest.to_string());
                return out;
            }
        }
    }
}

/// RFC 3986 unreserved characters stay; every other byte is `%XX`
/// (what .NET's `Uri.EscapeDataString` does).
pub(crate) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `uri(base, relative)` as .NET's `new Uri(baseUri, relative)`: a relative
/// path replaces the base's last segment (kept when the base ends with
/// `/`); one starting with `/` replaces the whole path; an absolute URI wins.
pub(crate) fn uri(base: &str, relative: &str) -> String {
    if relative.contains("://") {
        return relative.to_string();
    }
    let base = base.split(['?', '#']).next().unwrap_or(base);
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    if relative.starts_with('/') {
        return format!("{}{relative}", &base[..path_start]);
    }
    let dir_end = base[path_start..]
        .rfind('/')
        .map(|i| path_start + i + 1)
        .unwrap_or(base.len());
    let dir = if dir_end <= path_start || path_start == base.len() {
        format!("{}/", &base[..path_start])
    } else {
        base[..dir_end].to_string()
    };
    // Dot segments, as Uri normalises them.
    let mut parts: Vec<&str> = dir[path_start.min(dir.len())..].split('/').collect();
    parts.pop();
    for seg in relative.split('/') {
        match seg {
            "." => {}
            ".." => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            s => parts.push(s),
        }
    }
    format!("{}{}", &base[..path_start], parts.join("/"))
}

/// .NET composite formatting: `{index[,alignment][:format]}` with `{{`/`}}`.
fn format(args: &[Value]) -> Result<Value, String> {
    let pattern = text(&args[0]);
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut spec = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '}' {
                        closed = true;
                        break;
                    }
                    spec.push(d);
                }
                if !closed {
                    return Err(format!("format: '{{{spec}' is not closed with '}}'"));
                }
                let (head, fmt) = match spec.split_once(':') {
                    Some((h, f)) => (h, Some(f)),
                    None => (spec.as_str(), None),
                };
                let (index, align) = match head.split_once(',') {
                    Some((i, a)) => (i, Some(a)),
                    None => (head, None),
                };
                let index: usize = index.trim().parse().map_err(|_| {
                    format!("format: '{{{spec}}}' is not a placeholder such as {{0}}")
                })?;
                let v = args.get(index.saturating_add(1)).ok_or_else(|| {
                    format!("format: there is no argument {index} for '{{{spec}}}'")
                })?;
                let mut item = match fmt {
                    Some(f) => format_value(v, f)?,
                    None => text(v),
                };
                if let Some(a) = align {
                    let w: i64 = a
                        .trim()
                        .parse()
                        .map_err(|_| format!("format: bad alignment in '{{{spec}}}'"))?;
                    let pad = (w.unsigned_abs() as usize).saturating_sub(item.chars().count());
                    text_fits("format", out.len() + item.len() + pad)?;
                    item = if w < 0 {
                        format!("{item}{}", " ".repeat(pad))
                    } else {
                        format!("{}{item}", " ".repeat(pad))
                    };
                }
                text_fits("format", out.len() + item.len())?;
                out.push_str(&item);
            }
            other => out.push(other),
        }
    }
    Ok(json!(out))
}

/// The largest precision of a standard numeric format (`D9999`).
const MAX_PRECISION: usize = 9_999;

/// One .NET numeric format string (invariant culture): standard `D`, `X`,
/// `N`, `F`, `E`, `G`, `P` with an optional precision, or a custom pattern
/// of `0`, `#`, `,` and `.`.
fn format_value(v: &Value, f: &str) -> Result<String, String> {
    let Some(n) = v.as_f64() else {
        // Strings and others ignore numeric formats, as .NET does.
        return Ok(text(v));
    };
    let is_int = v.is_i64() || v.is_u64();
    let mut cs = f.chars();
    let letter = cs.next().unwrap_or('G');
    let rest: String = cs.collect();
    let precision: Option<usize> = if rest.is_empty() {
        None
    } else {
        rest.parse().ok()
    };
    if letter.is_ascii_alphabetic() && (rest.is_empty() || precision.is_some()) {
        // .NET takes up to 999,999,999 digits; the lab stops where a
        // formatter's width does (and far below 4 MB of text).
        if let Some(p) = precision.filter(|p| *p > MAX_PRECISION) {
            return Err(format!(
                "format: the precision {p} of '{f}' is over the lab's limit of {MAX_PRECISION}"
            ));
        }
        let p = precision;
        return Ok(match letter {
            'D' | 'd' => {
                if !is_int {
                    return Err(format!("format: '{f}' is only for integers"));
                }
                let i = v.as_i64().unwrap_or(0);
                let digits = format!("{:0w$}", i.unsigned_abs(), w = p.unwrap_or(1));
                if i < 0 {
                    format!("-{digits}")
                } else {
                    digits
                }
            }
            'X' | 'x' => {
                if !is_int {
                    return Err(format!("format: '{f}' is only for integers"));
                }
                let i = v.as_i64().unwrap_or(0);
                let h = format!("{:0w$X}", i, w = p.unwrap_or(1));
                if letter == 'x' {
                    h.to_lowercase()
                } else {
                    h
                }
            }
            'N' | 'n' => group(&format!("{:.p$}", n, p = p.unwrap_or(2))),
            'F' | 'f' => format!("{:.p$}", n, p = p.unwrap_or(2)),
            'P' | 'p' => format!(
                "{} %",
                group(&format!("{:.p$}", n * 100.0, p = p.unwrap_or(2)))
            ),
            'E' | 'e' => {
                let s = format!("{:.p$e}", n, p = p.unwrap_or(6));
                let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                let sign = if e < 0 { '-' } else { '+' };
                let out = format!("{m}E{sign}{:03}", e.abs());
                if letter == 'e' {
                    out.to_lowercase()
                } else {
                    out
                }
            }
            'G' | 'g' => text(v),
            _ => {
                return Err(format!(
                    "format: '{f}' is not a format specifier the lab knows"
                ))
            }
        });
    }
    Ok(custom(n, f))
}

/// `1234567.891` -> `1,234,567.891` (the integer part grouped by threes).
fn group(s: &str) -> String {
    let (sign, s) = s.strip_prefix('-').map(|r| ("-", r)).unwrap_or(("", s));
    let (int, frac) = s
        .split_once('.')
        .map(|(i, f)| (i, Some(f)))
        .unwrap_or((s, None));
    let mut g = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            g.push(',');
        }
        g.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{g}.{f}"),
        None => format!("{sign}{g}"),
    }
}

/// Custom numeric patterns: `000` pads, `#` is an optional digit, `,` in the
/// integer part groups, `.` starts the decimals (`0.00`, `#,##0.0`).
fn custom(n: f64, f: &str) -> String {
    let (ip, fp) = f.split_once('.').unwrap_or((f, ""));
    let decimals_min = fp.chars().filter(|c| *c == '0').count();
    let decimals_max = fp.chars().filter(|c| matches!(c, '0' | '#')).count();
    let int_min = ip.chars().filter(|c| *c == '0').count();
    let grouped = ip.contains(',');
    let s = format!("{:.p$}", n.abs(), p = decimals_max);
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut frac = frac.to_string();
    while frac.len() > decimals_min && frac.ends_with('0') {
        frac.pop();
    }
    let mut int = int.trim_start_matches('0').to_string();
    if int.len() < int_min {
        int = format!("{}{int}", "0".repeat(int_min - int.len()));
    }
    if grouped {
        int = group(&int);
    }
    let sign = if n < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

/// Civil date of a Unix time (Howard Hinnant's days-from-civil inverse).
fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// `utcNow(format)`: .NET's standard `u`, `s`, `o`, `d`, `t`, `T` and
/// custom patterns (`yyyy MM dd HH mm ss` and their short forms, quoted literals).
pub(crate) fn format_time(t: i64, f: &str) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    match f {
        "u" => return format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z"),
        "s" => return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
        "o" | "O" => return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.0000000Z"),
        "d" => return format!("{mo}/{d}/{y:04}"),
        "t" => return format!("{h:02}:{mi:02}"),
        "T" => return format!("{h:02}:{mi:02}:{s:02}"),
        _ => {}
    }
    let c: Vec<char> = f.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        let run = c[i..].iter().take_while(|x| **x == c[i]).count();
        let v = match c[i] {
            'y' => Some(if run >= 4 {
                format!("{y:04}")
            } else {
                format!("{:02}", y % 100)
            }),
            'M' => Some(if run >= 2 {
                format!("{mo:02}")
            } else {
                mo.to_string()
            }),
            'd' => Some(if run >= 2 {
                format!("{d:02}")
            } else {
                d.to_string()
            }),
            'H' => Some(if run >= 2 {
                format!("{h:02}")
            } else {
                h.to_string()
            }),
            'h' => {
                let h12 = if h % 12 == 0 { 12 } else { h % 12 };
                Some(if run >= 2 {
                    format!("{h12:02}")
                } else {
                    h12.to_string()
                })
            }
            'm' => Some(if run >= 2 {
                format!("{mi:02}")
            } else {
                mi.to_string()
            }),
            's' => Some(if run >= 2 {
                format!("{s:02}")
            } else {
                s.to_string()
            }),
            _ => None,
        };
        match (v, c[i]) {
            (Some(v), _) => {
                out.push_str(&v);
                i += run;
            }
            (None, '\'') => {
                i += 1;
                while i < c.len() && c[i] != '\'' {
                    out.push(c[i]);
                    i += 1;
                }
                i += 1;
            }
            (None, ch) => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}
