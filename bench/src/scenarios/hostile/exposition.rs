//! A strict reader of the Prometheus / OpenMetrics text exposition format,
//! enough to tell whether a scrape still parses after hostile request paths
//! (metric and label names, quoted label values with only the `\\`, `\"`
//! and `\n` escapes, no repeated label name, a numeric value) and to find
//! the series of one method.

use std::collections::HashSet;

/// One sample line: metric name and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Metric name, e.g. `grpc_server_started_total`.
    pub name: String,
    /// Labels in order.
    pub labels: Vec<(String, String)>,
}

impl Sample {
    /// The value of label `name`, when present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_name_start(c: char, colon: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (colon && c == ':')
}

fn is_name_char(c: char, colon: bool) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':')
}

/// Reads a name at the start of `s`; returns it and the rest.
fn name(s: &str, colon: bool) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c, colon) => {}
        _ => return None,
    }
    let end = chars
        .find(|&(_, c)| !is_name_char(c, colon))
        .map_or(s.len(), |(i, _)| i);
    Some((&s[..end], &s[end..]))
}

/// Reads a quoted label value (after its opening quote); returns the
/// unescaped value and the rest after the closing quote.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => return Err(format!("invalid escape `\\{other}`")),
                None => return Err("label value ends in a backslash".into()),
            },
            '\n' => return Err("raw newline in a label value".into()),
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn number(s: &str) -> bool {
    matches!(s, "+Inf" | "-Inf" | "Inf" | "NaN") || s.parse::<f64>().is_ok()
}

/// Parses one sample line.
fn sample(line: &str) -> Result<Sample, String> {
    let (metric, mut rest) = name(line, true).ok_or("no metric name")?;
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        let mut seen = HashSet::new();
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = name(rest, false).ok_or_else(|| {
                format!(
                    "expected a label name at `{}`",
                    rest.chars().take(20).collect::<String>()
                )
            })?;
            let after = after
                .strip_prefix("=\"")
                .ok_or_else(|| format!("expected =\" after label {label}"))?;
            let (value, after) = quoted(after)?;
            if !seen.insert(label.to_string()) {
                return Err(format!("label {label} repeated"));
            }
            labels.push((label.to_string(), value));
            rest = match after.strip_prefix(',') {
                Some(a) => a,
                None if after.starts_with('}') => after,
                None => {
                    return Err(format!(
                        "expected , or }} after label {label} at `{}`",
                        after.chars().take(20).collect::<String>()
                    ));
                }
            };
        }
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or("expected a space before the value")?;
    // An OpenMetrics exemplar follows ` # `.
    let rest = rest.split(" # ").next().unwrap_or(rest);
    let mut fields = rest.split(' ');
    let value = fields.next().unwrap_or("");
    if !number(value) {
        return Err(format!("value `{value}` is not a number"));
    }
    if let Some(ts) = fields.next()
        && !number(ts)
    {
        return Err(format!("timestamp `{ts}` is not a number"));
    }
    if fields.next().is_some() {
        return Err("trailing fields after the value".into());
    }
    Ok(Sample {
        name: metric.to_string(),
        labels,
    })
}

/// Parses a whole exposition; the samples, or the first offending line
/// (1-based) and why.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line == "# EOF" {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let kind = words.next().unwrap_or("");
            if matches!(kind, "HELP" | "TYPE" | "UNIT")
                && name(words.next().unwrap_or(""), true).is_none_or(|(_, r)| !r.is_empty())
            {
                return Err(format!("line {}: bad metric name in # {kind}", n + 1));
            }
            continue;
        }
        match sample(line) {
            Ok(s) => samples.push(s),
            Err(why) => {
                let shown: String = line.chars().take(160).collect();
                return Err(format!("line {}: {why}: {shown}", n + 1));
            }
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_clean_exposition() {
        let text = "# HELP grpc_server_started Total.\n# TYPE grpc_server_started counter\n\
             grpc_server_started_total{grpc_type=\"unary\",grpc_service=\"a.B\",grpc_method=\"C\"} 3\n\
             portolan_registry_version 1.7e12\n\
             h_bucket{le=\"+Inf\",x=\"q\\\"uote\\\\d\\n\"} 2 # {trace_id=\"1\"} 1\n# EOF\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].label("grpc_method"), Some("C"));
        assert_eq!(samples[2].label("x"), Some("q\"uote\\d\n"));
    }

    #[test]
    fn injected_quotes_and_bad_escapes_do_not_parse() {
        // A path `/x",grpc_code="OK/y` written without escaping.
        let injected = "grpc_server_handled_total{grpc_service=\"x\",grpc_code=\"OK\",\
                        grpc_method=\"y\",grpc_code=\"Unimplemented\"} 1\n";
        assert!(parse(injected).unwrap_err().contains("repeated"));
        let unescaped = "grpc_server_started_total{grpc_service=\"evil\"svc\"} 1\n";
        assert!(parse(unescaped).is_err());
        let backslash = "grpc_server_started_total{grpc_service=\"back\\slash\"} 1\n";
        assert!(parse(backslash).unwrap_err().contains("invalid escape"));
        assert!(parse("m{a=\"1\"} one\n").is_err());
        assert!(parse("9m 1\n").is_err());
    }
}
