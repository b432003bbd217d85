//! `kenar-hook prune`, `erase` and `export`: the stored records' way out, by age or by whose
//! they are (docs/operations.md).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::call::{Failure, open_store};
use super::output::{Report, finish, print};
use crate::config::Settings;
use crate::items::{ClickItem, EventItem, MessageItem, rfc3339};
use crate::retention;
use crate::store::lifecycle::{Erasure, Exported, Identity, Log, Removed};
use crate::store::{RecordKind, Store};

/// Exit code of a command stopped by Ctrl-C (128 + SIGINT), after its last whole batch.
const INTERRUPTED: u8 = 130;

/// Records exported per query: memory stays bounded at any size.
const EXPORT_PAGE: i64 = 500;

/// The fewest characters an identity may have: refused deliveries are searched for it as
/// text, and a shorter one would match most of them.
const MIN_IDENTITY_CHARS: usize = 4;

/// A table `--kind` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Chat messages (by `sent_at`).
    Messages,
    /// Events.
    Events,
    /// Button clicks.
    Clicks,
    /// Refused deliveries.
    Rejected,
}

impl From<KindArg> for Log {
    fn from(kind: KindArg) -> Log {
        match kind {
            KindArg::Messages => Log::Messages,
            KindArg::Events => Log::Events,
            KindArg::Clicks => Log::Clicks,
            KindArg::Rejected => Log::Rejected,
        }
    }
}

/// `kenar-hook prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete what is older than this: `90d`, `12h`, `2w`, `30m`.
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    pub older_than: Duration,
    /// Only this table (all four when omitted).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Count what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete records an active forwarding endpoint has not delivered yet, too (as
    /// `retention.force`).
    #[arg(long)]
    pub force: bool,
    /// One JSON line per batch and one at the end (the default when stdout is not a
    /// terminal).
    #[arg(long)]
    pub json: bool,
}

/// Who: exactly one of a user, a conversation or a post.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct IdentityArgs {
    /// A user id: the parties of legacy conversations, senders and receivers of legacy
    /// messages, clicking users and peers, the subjects of events.
    #[arg(long, value_name = "ID")]
    pub user_id: Option<String>,
    /// A conversation id.
    #[arg(long, value_name = "ID")]
    pub conversation_id: Option<String>,
    /// A post token.
    #[arg(long, value_name = "TOKEN")]
    pub post_token: Option<String>,
}

impl IdentityArgs {
    fn identity(&self) -> Result<Identity, Failure> {
        let (flag, value, identity): (&str, &String, fn(String) -> Identity) =
            match (&self.user_id, &self.conversation_id, &self.post_token) {
                (Some(v), _, _) => ("--user-id", v, Identity::User),
                (_, Some(v), _) => ("--conversation-id", v, Identity::Conversation),
                (_, _, Some(v)) => ("--post-token", v, Identity::Post),
                _ => {
                    return Err(Failure::Usage(
                        "give --user-id, --conversation-id or --post-token".into(),
                    ));
                }
            };
        let value = value.trim();
        if value.chars().count() < MIN_IDENTITY_CHARS {
            return Err(Failure::Usage(format!(
                "{flag}: {value:?} is too short to name anyone (at least {MIN_IDENTITY_CHARS} characters)"
            )));
        }
        Ok(identity(value.to_owned()))
    }
}

/// `kenar-hook erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// Whose records.
    #[command(flatten)]
    pub who: IdentityArgs,
    /// Count what would be erased; erase nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `kenar-hook export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Whose records.
    #[command(flatten)]
    pub who: IdentityArgs,
    /// Write to this new file (created with owner-only permissions) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_age(text: &str) -> Result<Duration, String> {
    let age = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: write a number and a unit, such as 90d, 12h or 2w"))?;
    if age.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(age)
}

/// Ends the returned token at Ctrl-C, so a command stops after its current batch.
fn interrupt() -> CancellationToken {
    let stop = CancellationToken::new();
    let token = stop.clone();
    // Registered here, before the first batch, so that a Ctrl-C at any moment is caught.
    #[cfg(unix)]
    let mut signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    tokio::spawn(async move {
        #[cfg(unix)]
        let caught = match signal.as_mut() {
            Some(signal) => signal.recv().await.is_some(),
            None => false,
        };
        #[cfg(not(unix))]
        let caught = tokio::signal::ctrl_c().await.is_ok();
        if caught {
            token.cancel();
        }
    });
    stop
}

fn store_failure(e: crate::store::Error) -> Failure {
    Failure::Store(e.into())
}

/// Runs `kenar-hook prune`.
pub async fn prune(settings: &Settings, args: PruneArgs) -> ExitCode {
    let lines = args.json || !std::io::stdout().is_terminal();
    let store = match open_store(settings).await {
        Ok(store) => store,
        Err(e) => return finish(args.json, Err(e)),
    };
    let age = match chrono::Duration::from_std(args.older_than) {
        Ok(age) => age,
        Err(_) => {
            return finish(
                args.json,
                Err(Failure::Usage("--older-than is too long".into())),
            );
        }
    };
    let before = Utc::now() - age;
    let logs: Vec<Log> = match args.kind {
        Some(kind) => vec![kind.into()],
        None => Log::ALL.to_vec(),
    };
    let force = args.force || settings.retention.force;
    let result = if args.dry_run {
        dry_run(&store, settings, &logs, before, force).await
    } else {
        run_prune(&store, settings, &logs, before, force, lines).await
    };
    store.close().await;
    match result {
        Ok((report, interrupted)) => {
            let code = finish(lines, Ok(report));
            if interrupted {
                eprintln!(
                    "kenar-hook: interrupted; every batch above is whole, run again to go on"
                );
                return ExitCode::from(INTERRUPTED);
            }
            code
        }
        Err(e) => finish(lines, Err(e)),
    }
}

async fn dry_run(
    store: &Store,
    settings: &Settings,
    logs: &[Log],
    before: DateTime<Utc>,
    force: bool,
) -> Result<(Report, bool), Failure> {
    let mut counts = Map::new();
    let mut text = format!("would remove, older than {}:", rfc3339(before));
    for &log in logs {
        let keep = retention::keep(&settings.forward.endpoints, log, force);
        let n = store
            .count_expired(log, before, &keep)
            .await
            .map_err(store_failure)?;
        text.push_str(&format!("\n  {log}: {n}"));
        counts.insert(log.as_str().into(), json!(n));
    }
    let json = json!({"dry_run": true, "before": rfc3339(before), "would_remove": counts});
    Ok((Report::new(text, json), false))
}

async fn run_prune(
    store: &Store,
    settings: &Settings,
    logs: &[Log],
    before: DateTime<Utc>,
    force: bool,
    lines: bool,
) -> Result<(Report, bool), Failure> {
    let stop = interrupt();
    let mut removed = Map::new();
    let mut text = format!("removed, older than {}:", rfc3339(before));
    let mut conversations = 0;
    for &log in logs {
        if stop.is_cancelled() {
            break;
        }
        let keep = retention::keep(&settings.forward.endpoints, log, force);
        let bar = if lines {
            None
        } else {
            let total = store
                .count_expired(log, before, &keep)
                .await
                .map_err(store_failure)?;
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>9} [{bar:30}] {pos}/{len} rows, {per_sec}, {eta} left",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(log.as_str());
            Some(bar)
        };
        let mut broken_pipe = false;
        let total = retention::prune(
            store,
            log,
            before,
            &keep,
            settings.retention.batch_size,
            &stop,
            |batch: Removed| match &bar {
                Some(bar) => bar.inc(batch.rows),
                None => {
                    let line = json!({"kind": log, "removed": batch});
                    if !broken_pipe && print(&line.to_string()).is_err() {
                        broken_pipe = true;
                    }
                }
            },
        )
        .await
        .map_err(store_failure)?;
        if let Some(bar) = bar {
            bar.finish();
        }
        conversations += total.conversations;
        text.push_str(&format!("\n  {log}: {}", total.rows));
        removed.insert(log.as_str().into(), json!(total.rows));
    }
    if conversations > 0 {
        text.push_str(&format!(
            "\n  (conversations left empty and removed: {conversations})"
        ));
    }
    let interrupted = stop.is_cancelled();
    let json = json!({
        "done": !interrupted,
        "before": rfc3339(before),
        "removed": removed,
        "conversations_removed": conversations,
    });
    Ok((Report::new(text, json), interrupted))
}

/// Runs `kenar-hook erase`.
pub async fn erase(settings: &Settings, args: EraseArgs) -> ExitCode {
    let result = async {
        let identity = args.who.identity()?;
        let store = open_store(settings).await?;
        let erasure = Erasure {
            identity,
            up_to: None,
            keep_revocations: false,
        };
        let counted = if args.dry_run {
            store.count_erasable(&erasure).await
        } else {
            store
                .erase(&erasure, i64::from(settings.retention.batch_size))
                .await
        };
        store.close().await;
        let e = counted.map_err(store_failure)?;
        let verb = if args.dry_run {
            "would erase"
        } else {
            "erased"
        };
        let text = format!(
            "{verb}: {} messages, {} conversations, {} events, {} clicks, {} refused deliveries{}",
            e.messages,
            e.conversations,
            e.events,
            e.clicks,
            e.rejected,
            if args.dry_run {
                String::new()
            } else {
                format!(", {} forwarding entries", e.forwarding)
            }
        );
        let mut json = json!(e);
        json["dry_run"] = json!(args.dry_run);
        Ok(Report::new(text, json))
    }
    .await;
    finish(args.json, result)
}

/// Why an export stopped.
enum ExportStop {
    /// Before anything was read, or reading failed: the command's failure.
    Failed(Failure),
    /// Writing the output failed (a reader that went away included).
    Write(std::io::Error),
}

impl From<Failure> for ExportStop {
    fn from(failure: Failure) -> Self {
        ExportStop::Failed(failure)
    }
}

/// Runs `kenar-hook export`: JSON Lines, messages then events then clicks, each in `seq`
/// order and in the read API's item shape, unmasked.
pub async fn export(settings: &Settings, args: ExportArgs) -> ExitCode {
    let result = async {
        let identity = args.who.identity()?;
        let out: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(new_private_file(path)?),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut out = std::io::BufWriter::new(out);
        let store = open_store(settings).await?;
        let written = write_export(&store, &identity, &mut out).await;
        store.close().await;
        let counts = written?;
        out.flush().map_err(ExportStop::Write)?;
        Ok::<_, ExportStop>(counts)
    }
    .await;
    let failed = |code: ExitCode| {
        // A half-written file is not an export: it is removed.
        if let Some(path) = &args.output {
            let _ = std::fs::remove_file(path);
        }
        code
    };
    match result {
        Ok([messages, events, clicks]) => {
            eprintln!("kenar-hook: exported {messages} messages, {events} events, {clicks} clicks");
            ExitCode::SUCCESS
        }
        // The reader went away (`export ... | head`): end quietly, as other Unix tools do.
        Err(ExportStop::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(ExportStop::Write(e)) => {
            match &args.output {
                Some(p) => eprintln!("kenar-hook: cannot write {}: {e}", p.display()),
                None => eprintln!("kenar-hook: cannot write to stdout: {e}"),
            }
            failed(ExitCode::FAILURE)
        }
        // A file that could not be created is not ours to remove.
        Err(ExportStop::Failed(e @ Failure::Usage(_))) => finish(false, Err(e)),
        Err(ExportStop::Failed(e)) => failed(finish(false, Err(e))),
    }
}

async fn write_export(
    store: &Store,
    identity: &Identity,
    out: &mut impl Write,
) -> Result<[u64; 3], ExportStop> {
    let mut counts = [0u64; 3];
    for (i, kind) in RecordKind::ALL.into_iter().enumerate() {
        let mut after = 0;
        loop {
            let page = store
                .export_page(kind, identity, after, EXPORT_PAGE)
                .await
                .map_err(store_failure)?;
            if page.is_empty() {
                break;
            }
            for record in &page {
                let (seq, item): (i64, Value) = match record {
                    Exported::Message(m) => {
                        let view = m.view();
                        (m.seq, json!(MessageItem::new(&view, None)))
                    }
                    Exported::Event(e) => (e.seq, json!(EventItem::from(e.clone()))),
                    Exported::Click(c) => (c.seq, json!(ClickItem::from(c.clone()))),
                };
                after = seq;
                counts[i] += 1;
                writeln!(out, "{item}").map_err(ExportStop::Write)?;
            }
        }
    }
    Ok(counts)
}

/// A new file only its owner can read: an export is one person's private data.
fn new_private_file(path: &PathBuf) -> Result<std::fs::File, Failure> {
    let options = crate::private_file::create_new(Some(crate::private_file::PRIVATE));
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::Usage(format!(
                "{}: already exists; choose a new file",
                path.display()
            ))
        } else {
            Failure::Usage(format!("cannot create {}: {e}", path.display()))
        }
    })
}
