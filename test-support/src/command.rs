//! Running a program a test drives, with its output kept for the failure
//! message: a failed step names the program, its arguments and what it said.

use std::process::Command;

/// Runs `command` to completion; returns stdout followed by stderr. Panics
/// naming `program` (and the arguments) with that output when it cannot
/// start or exits unsuccessfully.
pub fn run_checked(program: &str, command: &mut Command) -> String {
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} does not start: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{program} {}: failed ({})\n{text}",
        args.join(" "),
        out.status
    );
    text
}
