//! What a command prints: its result as text or JSON on stdout, a failure as one line on
//! stderr (and as JSON on stdout with `--json`), and the exit code.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::call::Failure;
use crate::divar::outbound::PreparedRequest;

/// The result of a command, in both forms.
pub(super) struct Report {
    text: String,
    json: Value,
    dry_run: bool,
}

impl Report {
    /// A result shown as `text`, or as `json` with `--json`.
    pub(super) fn new(text: impl Into<String>, json: Value) -> Self {
        Self {
            text: text.into(),
            json,
            dry_run: false,
        }
    }

    /// The request a dry run would have sent: an HTTP-like listing, or
    /// `{"dry_run": true, "request": {method, url, headers, body}}`.
    pub(super) fn dry_run(request: &PreparedRequest) -> Self {
        Self {
            text: request.to_string(),
            json: json!({"dry_run": true, "request": request}),
            dry_run: true,
        }
    }
}

/// Writes `text` and a newline to stdout. A reader that went away (`kenar-hook openapi |
/// head -1`) ends the command quietly with 0, as it does other Unix tools; `Err` holds the
/// exit code to end with now: 0 for a closed pipe, 1 (after saying why) for another error.
pub fn print(text: &str) -> Result<(), ExitCode> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("kenar-hook: cannot write to stdout: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// Prints the result or the failure and returns the exit code.
pub(super) fn finish(json: bool, result: Result<Report, Failure>) -> ExitCode {
    match result {
        Ok(report) => {
            let printed = if json {
                print(&report.json.to_string())
            } else {
                print(report.text.trim_end())
            };
            if let Err(code) = printed {
                return code;
            }
            if !json && report.dry_run {
                eprintln!("kenar-hook: dry run: nothing was sent");
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let code = failure.exit_code();
            eprintln!("kenar-hook: {failure}");
            if json {
                let error = json!({"error": {
                    "kind": failure.kind(),
                    "message": failure.to_string(),
                    "exit_code": code,
                }});
                // The failure's own code stands even when nobody reads the JSON.
                let _ = print(&error.to_string());
            }
            ExitCode::from(code)
        }
    }
}
