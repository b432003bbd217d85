//! What a command prints: its result as text or JSON on stdout, a failure as one line on
//! stderr (and as JSON on stdout with `--json`), and the exit code.

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

/// Prints the result or the failure and returns the exit code.
pub(super) fn finish(json: bool, result: Result<Report, Failure>) -> ExitCode {
    match result {
        Ok(report) => {
            if json {
                println!("{}", report.json);
            } else {
                println!("{}", report.text.trim_end());
                if report.dry_run {
                    eprintln!("kenar-hook: dry run: nothing was sent");
                }
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
                println!("{error}");
            }
            ExitCode::from(code)
        }
    }
}
