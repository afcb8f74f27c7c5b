//! The report pipeline on a fabricated run: criterion's files, extras and
//! `swarm.json` in, a schema-valid report and a baseline verdict out.

use std::path::Path;

use super::*;

/// Writes a criterion result the way criterion lays it out.
fn criterion_result(dir: &Path, id: &str, median_ns: f64, throughput: &str) {
    let new = dir.join(id).join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(
        new.join("benchmark.json"),
        format!(r#"{{"group_id":"g","function_id":"f","value_str":null,"throughput":{throughput},"full_id":"{id}","directory_name":"{id}","title":"{id}"}}"#),
    )
    .unwrap();
    std::fs::write(
        new.join("estimates.json"),
        format!(r#"{{"mean":{{"point_estimate":1.0}},"median":{{"point_estimate":{median_ns}}}}}"#),
    )
    .unwrap();
}

/// A run where every manifest benchmark took `ns` (hive's took `hive_ns`).
fn fake_run(dir: &Path, hive_ns: f64, ns: f64) {
    for c in manifest::comparisons() {
        let throughput = match c.measure {
            manifest::Measure::Time => "null",
            manifest::Measure::Rate("MB/s") => r#"{"Bytes":1000000}"#,
            manifest::Measure::Rate(_) => r#"{"Elements":1}"#,
        };
        criterion_result(dir, c.hive, hive_ns, throughput);
        if let manifest::Anchor::Bench(id, _) = c.anchor {
            criterion_result(dir, id, ns, throughput);
        }
    }
}

const EXTRA: &str = r#"{"component":"hive-core","case":"end-to-end swarm throughput","unit":"msg/s","higher_is_better":true,"hive":2000000,"anchor":"goal: 1,000,000 msg/s","anchor_value":1000000,"ratio":2,"goal":1}"#;

#[test]
fn a_full_run_gives_a_schema_valid_report() {
    let dir = tempfile::tempdir().unwrap();
    let criterion = dir.path().join("criterion");
    fake_run(&criterion, 50.0, 100.0);
    let extra = dir.path().join("extra.jsonl");
    std::fs::write(
        &extra,
        format!("{EXTRA}\n{}\n", EXTRA.replace("2000000", "2500000")),
    )
    .unwrap();

    let medians = collect::criterion_medians(&criterion, None).unwrap();
    let (entries, missing) = collect::entries(&medians, collect::extras(&extra).unwrap());
    assert!(missing.is_empty(), "{missing:?}");
    assert_eq!(
        entries.len(),
        manifest::comparisons().count() + 1,
        "a repeated extra counts once"
    );
    let swarm = entries
        .iter()
        .find(|e| e.case == "end-to-end swarm throughput")
        .unwrap();
    assert_eq!(swarm.hive, 2_500_000.0, "the later line wins");

    let time = entries.iter().find(|e| e.case == "id creation").unwrap();
    assert_eq!((time.unit.as_str(), time.ratio), ("ns", Some(0.5)));
    assert!(!time.higher_is_better);
    let rate = entries
        .iter()
        .find(|e| e.case == "throughput 1 -> 1")
        .unwrap();
    assert_eq!(rate.hive, 2e7, "1 element per 50 ns");
    assert_eq!(rate.ratio, Some(2.0));
    let mb = entries
        .iter()
        .find(|e| e.case.starts_with("wire encode speed, zstd batch"))
        .unwrap();
    assert_eq!(mb.hive, 2e7, "1 MB per 50 ns is 20 million MB/s");
    let stats = entries
        .iter()
        .find(|e| e.case.ends_with("1 KiB, stats on"))
        .unwrap();
    assert_eq!(stats.goal, Some(1.01), "+1 ns over a 100 ns anchor");

    let out = dir.path().join("hive-bench");
    let machine = Machine::detect(true);
    write_reports(&out, &machine, &entries, None).unwrap();
    schema::validate(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| Swarm throughput") && md.contains("2.50M msg/s"),
        "{md}"
    );
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("No earlier runs"));
    // The second run sees the first in its history.
    write_reports(
        &out,
        &Machine {
            timestamp: "9999-01-01T00:00:00Z".into(),
            ..machine
        },
        &entries,
        None,
    )
    .unwrap();
    assert!(std::fs::read_to_string(out.join("report.html"))
        .unwrap()
        .contains("<th>trend</th>"));
}

#[test]
fn results_older_than_the_run_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    criterion_result(dir.path(), "types.id_creation/hive", 7.0, "null");
    let later = SystemTime::now() + std::time::Duration::from_secs(3600);
    assert!(collect::criterion_medians(dir.path(), Some(later))
        .unwrap()
        .is_empty());
    assert_eq!(
        collect::criterion_medians(dir.path(), None).unwrap().len(),
        1
    );
}

#[test]
fn missing_results_are_reported_not_invented() {
    let (entries, missing) = collect::entries(&BTreeMap::new(), Vec::new());
    assert!(entries.is_empty());
    assert_eq!(missing.len(), manifest::comparisons().count());
}

#[test]
fn a_baseline_catches_a_regressed_ratio_and_passes_an_unchanged_run() {
    let dir = tempfile::tempdir().unwrap();
    let fast = dir.path().join("fast");
    fake_run(&fast, 50.0, 100.0);
    let (before, _) = collect::entries(
        &collect::criterion_medians(&fast, None).unwrap(),
        Vec::new(),
    );
    let baselines = dir.path().join("baselines");
    baseline_of("main", &before)
        .save(&baselines.join("main.json"))
        .unwrap();
    compare_with_baseline(&baselines, "main", &before).unwrap();

    let slow = dir.path().join("slow");
    fake_run(&slow, 80.0, 100.0); // hive 60% slower against the same anchors
    let (after, _) = collect::entries(
        &collect::criterion_medians(&slow, None).unwrap(),
        Vec::new(),
    );
    let err = compare_with_baseline(&baselines, "main", &after)
        .unwrap_err()
        .to_string();
    assert!(err.contains("regressed against baseline `main`"), "{err}");

    let mut drift = before[0].clone();
    (drift.case, drift.hive, drift.ratio) = ("drift".into(), -0.2, Some(-0.2));
    assert!(
        baseline_of("x", &[drift]).entries.is_empty(),
        "a negative ratio is not guarded"
    );

    let err = format!(
        "{:#}",
        compare_with_baseline(&baselines, "nope", &after).unwrap_err()
    );
    assert!(err.contains("--save-baseline nope"), "{err}");
}

#[test]
fn options_parse_and_refuse_nonsense() {
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let o = Options::parse(&args(&[
        "--quick",
        "--baseline",
        "main",
        "--save-baseline",
        "next",
    ]))
    .unwrap();
    assert_eq!(
        o,
        Options {
            quick: true,
            save_baseline: Some("next".into()),
            baseline: Some("main".into()),
            report_only: false,
            update_docs: false
        }
    );
    assert!(Options::parse(&args(&["--baseline"])).is_err());
    assert!(Options::parse(&args(&["--baseline", "../etc"])).is_err());
    assert!(Options::parse(&args(&["--fast"])).is_err());
    assert!(
        Options::parse(&args(&["--quick", "--update-docs"])).is_err(),
        "smoke figures never go into READMEs"
    );
}
