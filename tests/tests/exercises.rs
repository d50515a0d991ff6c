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

/// Start exercise `n`: its check fails and says what is wrong; its hint
/// exists; after its solution every criterion passes; after a reset the
/// check fails again.
fn solve(n: u32) {
    let Some(lab) = Lab::start() else { return };
    // The CLI children inherit it.
    std::env::set_var("VNET_AGENT_LABS", labs());
    let n = n.to_string();
    let (ok, text) = exercise(&lab, &["start", &n]);
    assert!(ok, "exercise {n} does not start: {text}");
    let (ok, text) = exercise(&lab, &["check"]);
    assert!(!ok, "exercise {n} passes before it is solved:\n{text}");
    assert!(text.contains("FAIL "), "{text}");
    eprintln!("exercise {n} at its start:\n{text}");
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

#[test]
fn the_list_names_every_folder_of_labs() {
    let Some(lab) = Lab::start() else { return };
    std::env::set_var("VNET_AGENT_LABS", labs());
    let (ok, list) = exercise(&lab, &["list"]);
    assert!(ok, "{list}");
    let folders = std::fs::read_dir(labs())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(list.lines().count(), folders, "{list}");
    assert!(folders >= 10, "{list}");
}

macro_rules! exercises {
    ($($name:ident = $n:expr;)*) => {$(
        #[test]
        fn $name() {
            solve($n);
        }
    )*};
}

exercises! {
    exercise_01_nsg_blocks_the_database = 1;
    exercise_02_route_all_and_outbound_ips = 2;
    exercise_03_forced_tunnelling_through_a_firewall = 3;
    exercise_04_snat_exhaustion_and_a_nat_gateway = 4;
    exercise_05_private_endpoint_dns_three_ways = 5;
    exercise_06_storage_firewall_with_service_endpoints = 6;
    exercise_07_subnet_sizing_when_scaling = 7;
    exercise_08_configuration_routing_of_an_image_pull = 8;
    exercise_09_delete_without_disconnect_recovery = 9;
    exercise_10_hub_and_spoke_to_on_premises = 10;
}

#[test]
fn the_readmes_list_every_exercise() {
    let root = labs().join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let index = std::fs::read_to_string(labs().join("README.md")).unwrap();
    for e in std::fs::read_dir(labs()).unwrap() {
        let path = e.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let folder = path.file_name().unwrap().to_string_lossy().into_owned();
        let title = std::fs::read_to_string(path.join("README.md")).unwrap();
        let title = title.lines().next().unwrap().trim_start_matches('#').trim();
        for (name, text) in [("README.md", &readme), ("labs/README.md", &index)] {
            assert!(
                text.contains(&format!("[{title}]("))
                    && text.contains(&format!("{folder}/README.md")),
                "{name} does not list exercise {folder} ({title})"
            );
        }
    }
}
