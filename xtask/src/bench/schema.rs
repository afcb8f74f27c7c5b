//! The shape of `report.json`, checked on the file as written.
//!
//! `{"machine": {...}, "entries": [...]}`, each entry with exactly the keys
//! `component`, `case`, `unit`, `higher_is_better`, `hive`, `anchor`,
//! `anchor_value`, `ratio`, `goal`.

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

/// The keys of an entry, in the order the report writes them.
pub(crate) const ENTRY_KEYS: [&str; 9] = [
    "component",
    "case",
    "unit",
    "higher_is_better",
    "hive",
    "anchor",
    "anchor_value",
    "ratio",
    "goal",
];

/// Checks `text` is a report: the two top-level keys, a machine object and
/// a non-empty list of well-formed entries.
pub(crate) fn validate(text: &str) -> Result<()> {
    let doc: Value = serde_json::from_str(text).context("report.json is not JSON")?;
    let top = doc.as_object().context("report.json is not an object")?;
    let mut keys: Vec<&str> = top.keys().map(String::as_str).collect();
    keys.sort_unstable();
    ensure!(
        keys == ["entries", "machine"],
        "top-level keys are {keys:?}, not [entries, machine]"
    );
    ensure!(
        top.get("machine").is_some_and(Value::is_object),
        "machine is not an object"
    );
    let entries = top
        .get("entries")
        .and_then(Value::as_array)
        .context("entries is not an array")?;
    ensure!(!entries.is_empty(), "entries is empty");
    for (i, entry) in entries.iter().enumerate() {
        validate_entry(entry).with_context(|| format!("entry {i}: {entry}"))?;
    }
    Ok(())
}

fn validate_entry(entry: &Value) -> Result<()> {
    let object = entry.as_object().context("not an object")?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected = ENTRY_KEYS.to_vec();
    keys.sort_unstable();
    expected.sort_unstable();
    ensure!(keys == expected, "keys are {keys:?}");
    for key in ["component", "case", "unit", "anchor"] {
        let text = object.get(key).and_then(Value::as_str).unwrap_or_default();
        ensure!(!text.is_empty(), "{key} is not a non-empty string");
    }
    ensure!(
        object
            .get("higher_is_better")
            .is_some_and(Value::is_boolean),
        "higher_is_better is not a boolean"
    );
    for key in ["hive", "anchor_value"] {
        ensure!(
            object.get(key).is_some_and(Value::is_number),
            "{key} is not a number"
        );
    }
    for key in ["ratio", "goal"] {
        let value = object.get(key).unwrap_or(&Value::Null);
        if !(value.is_number() || value.is_null()) {
            bail!("{key} is neither a number nor null");
        }
    }
    let hive = object
        .get("hive")
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN);
    let anchor = object
        .get("anchor_value")
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN);
    if let Some(ratio) = object.get("ratio").and_then(Value::as_f64) {
        let expected = hive / anchor;
        ensure!(
            (ratio - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "ratio {ratio} is not hive / anchor_value = {expected}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"machine":{"cores":2},"entries":[
        {"component":"hive-types","case":"id creation","unit":"ns","higher_is_better":false,
         "hive":7.0,"anchor":"uuid new_v4","anchor_value":350.0,"ratio":0.02,"goal":0.2},
        {"component":"hive-core","case":"x","unit":"MB","higher_is_better":false,
         "hive":1.0,"anchor":"goal: 1 MB","anchor_value":0.0,"ratio":null,"goal":null}]}"#;

    #[test]
    fn a_well_formed_report_passes() {
        validate(GOOD).unwrap();
    }

    #[test]
    fn each_kind_of_defect_is_caught() {
        let cases = [
            (GOOD.replace("\"machine\"", "\"host\""), "top-level"),
            (
                GOOD.replace("\"goal\":0.2", "\"goal\":0.2,\"extra\":1"),
                "keys",
            ),
            (
                GOOD.replace("\"hive\":7.0", "\"hive\":\"7\""),
                "hive is not a number",
            ),
            (
                GOOD.replace("\"ratio\":0.02", "\"ratio\":0.5"),
                "not hive / anchor_value",
            ),
            (
                GOOD.replace(
                    "\"higher_is_better\":false,\n         \"hive\":7.0",
                    "\"higher_is_better\":0,\n         \"hive\":7.0",
                ),
                "boolean",
            ),
            (
                GOOD.replace("\"case\":\"id creation\"", "\"case\":\"\""),
                "case",
            ),
            (r#"{"machine":{},"entries":[]}"#.to_string(), "empty"),
        ];
        for (text, expected) in cases {
            let err = format!("{:#}", validate(&text).unwrap_err());
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }
}
