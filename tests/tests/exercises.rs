//! Issue 14, lab exercises: every exercise's solution is proved with real
//! traffic: start it, its check fails and says what is wrong, apply the
//! solution, its check passes.

use vnet_e2e::*;

fn labs() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../labs")
}

fn exercise(lab: &Lab, args: &[&str]) -> (bool, String) {
    let mut a = vec!["lab", "exercise"];
    a.extend_from_slice(args);
    let out = lab.cli(&a);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_exercise_fails_its_check_at_the_start_and_passes_after_its_solution() {
    let Some(lab) = Lab::start() else { return };
    // The CLI children inherit it.
    std::env::set_var("VNET_AGENT_LABS", labs());
    let (ok, list) = exercise(&lab, &["list"]);
    assert!(ok, "{list}");
    let numbers: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(numbers.len() >= 2, "{list}");
    for n in &numbers {
        let (ok, text) = exercise(&lab, &["start", n]);
        assert!(ok, "exercise {n} does not start: {text}");
        let (ok, text) = exercise(&lab, &["check"]);
        assert!(!ok, "exercise {n} passes before it is solved:\n{text}");
        assert!(text.contains("FAIL "), "{text}");
        let (ok, hint) = exercise(&lab, &["hint"]);
        assert!(ok && !hint.trim().is_empty(), "{hint}");
        let (ok, text) = exercise(&lab, &["solve"]);
        assert!(ok, "exercise {n}'s solution does not deploy: {text}");
        let (ok, text) = exercise(&lab, &["check"]);
        assert!(ok, "exercise {n} fails after its solution:\n{text}");
        assert!(text.contains("All criteria pass."), "{text}");
        let (ok, text) = exercise(&lab, &["reset"]);
        assert!(ok, "{text}");
        let (ok, text) = exercise(&lab, &["check"]);
        assert!(!ok, "exercise {n} passes again after reset:\n{text}");
    }
}
