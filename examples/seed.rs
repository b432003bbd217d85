//! Builds the read-API benchmark data set (docs/benchmarks.md) through the real store, and writes
//! the request paths the load generator replays.
//!
//! ```text
//! cargo run --release --example seed -- --database-url postgres://.../kh_bench \
//!     --messages 1000000 --conversations 20000 --posts 1000 --out target/bench
//! ```
//!
//! The data is deterministic: the same arguments build the same rows. 1% of conversations
//! are "busy" and hold half of all messages (so deep pages exist); the rest share the other
//! half. Conversation `i` belongs to post `i % posts`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kenar_hook::api::cursor::{self, Position};
use kenar_hook::config::{DatabaseSettings, SqliteSync};
use kenar_hook::store::query::{MessageQuery, Order};
use kenar_hook::store::{ConversationFacts, MessageSource, NewMessage, NewRecord, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use serde_json::json;

const TEXTS: &[&str] = &[
    "سلام، وقت بخیر. این ماشین هنوز فروشی هست؟",
    "قیمت نهایی چنده؟ امکان معاوضه هم هست؟",
    "بله موجوده. فردا ساعت ۱۷ برای بازدید تشریف بیارید.",
    "آدرس دقیق کجاست؟",
    "Is the price negotiable?",
    "ممنون، فردا تماس می‌گیرم.",
];

struct Plan {
    messages: u64,
    conversations: u64,
    posts: u64,
    busy: u64,
    per_busy: u64,
    per_quiet: u64,
    /// The first this many quiet conversations get one message more, so the total is exact.
    quiet_extra: u64,
}

impl Plan {
    fn new(messages: u64, conversations: u64, posts: u64) -> Plan {
        let busy = (conversations / 100).max(1);
        let per_busy = messages / 2 / busy;
        let quiet = (conversations - busy).max(1);
        let per_quiet = (messages - per_busy * busy) / quiet;
        let quiet_extra = (messages - per_busy * busy) % quiet;
        Plan {
            messages,
            conversations,
            posts,
            busy,
            per_busy,
            per_quiet,
            quiet_extra,
        }
    }

    fn count(&self, conversation: u64) -> u64 {
        match conversation {
            c if c < self.busy => self.per_busy,
            c if c - self.busy < self.quiet_extra => self.per_quiet + 1,
            _ => self.per_quiet,
        }
    }

    fn conversation_id(&self, i: u64) -> String {
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("bench-conversation-{i}").as_bytes(),
        )
        .to_string()
    }

    fn post_token(&self, i: u64) -> String {
        format!("BP{:06}", i % self.posts)
    }

    fn message_id(&self, conversation: u64, n: u64) -> String {
        format!("bench-{conversation:06}-{n:06}")
    }

    /// One message a minute per conversation, conversations offset by a millisecond.
    fn sent_at(&self, conversation: u64, n: u64) -> DateTime<Utc> {
        let base = 1_735_689_600_000_000_i64; // 2025-01-01T00:00:00Z
        DateTime::from_timestamp_micros(base + n as i64 * 60_000_000 + conversation as i64 * 1_000)
            .unwrap()
    }
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("--database-url", "");
    anyhow::ensure!(!url.is_empty(), "--database-url is required");
    let plan = Plan::new(
        arg("--messages", "1000000").parse()?,
        arg("--conversations", "20000").parse()?,
        arg("--posts", "1000").parse()?,
    );
    let out = PathBuf::from(arg("--out", "target/bench"));
    std::fs::create_dir_all(&out)?;
    let store = Store::connect(&DatabaseSettings {
        url: SecretString::from(url),
        max_connections: 2,
        acquire_timeout_ms: 30_000,
        sqlite_synchronous: SqliteSync::Normal,
        password: None,
        startup_wait_secs: 0,
    })
    .await?;
    store.migrate().await?;

    if arg("--paths-only", "no") == "no" {
        seed(&store, &plan).await?;
    }
    write_paths(&plan, &out)?;
    let (c, m, e) = store.counts().await?;
    println!("database holds {c} conversations, {m} messages, {e} events");
    Ok(())
}

async fn seed(store: &Store, plan: &Plan) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(42);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(2_000);
    let mut written = 0u64;
    let longest = plan.per_busy.max(plan.per_quiet + 1);
    // Round-robin over conversations, so rows arrive roughly in time order as they would.
    for n in 0..longest {
        for c in 0..plan.conversations {
            if n >= plan.count(c) {
                continue;
            }
            batch.push(message(plan, c, n, &mut rng));
            if batch.len() == batch.capacity() {
                store.write_batch(&batch).await?;
                written += batch.len() as u64;
                batch.clear();
                if written.is_multiple_of(100_000) {
                    println!(
                        "{written} messages, {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    store.write_batch(&batch).await?;
    written += batch.len() as u64;
    println!(
        "seeded {written} of {} planned messages in {:.0} s",
        plan.messages,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn message(plan: &Plan, c: u64, n: u64, rng: &mut StdRng) -> NewRecord {
    let image = rng.random_ratio(1, 10);
    let id = plan.message_id(c, n);
    let sent_at = plan.sent_at(c, n);
    let seller = n % 2 == 1;
    NewRecord::Message(NewMessage {
        id: id.clone(),
        origin: String::new(),
        source: MessageSource::Events,
        event_type: "NEW_MESSAGE".into(),
        conversation: ConversationFacts {
            id: plan.conversation_id(c),
            kind: "POST".into(),
            post_token: Some(plan.post_token(c)),
            supply_user_id: None,
            demand_user_id: None,
        },
        message_type: if image { "IMAGE" } else { "TEXT" }.into(),
        text: (!image).then(|| TEXTS[rng.random_range(0..TEXTS.len())].to_owned()),
        sender_side: Some(if seller { "SELLER" } else { "BUYER" }.into()),
        sender_type: Some("HUMAN".into()),
        sender_id: None,
        receiver_side: None,
        receiver_id: None,
        sent_at,
        sent_at_raw: Some(sent_at.timestamp_micros().to_string()),
        received_at: sent_at + Duration::from_millis(80),
        data: image.then(|| {
            json!({"link": format!("https://s100.divarcdn.com/static/chat/photo/{id}.jpg"),
            "size_bytes": rng.random_range(50_000..900_000), "height_px": 1280, "width_px": 960})
        }),
        metadata: Some(json!({"tenant": "bench"})),
        raw_body: format!(r#"{{"type":"NEW_MESSAGE","new_message":{{"id":"{id}"}}}}"#).into_bytes(),
    })
}

/// Paths for the load generator: pages of busy conversations at random depths (with the
/// cursor a client would hold), first pages of quiet ones, and first pages by post.
fn write_paths(plan: &Plan, out: &std::path::Path) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut pages = std::fs::File::create(out.join("conversation_pages.txt"))?;
    for _ in 0..20_000 {
        let c = if rng.random_ratio(1, 2) {
            rng.random_range(0..plan.busy)
        } else {
            rng.random_range(plan.busy..plan.conversations)
        };
        let id = plan.conversation_id(c);
        let pages_in = plan.count(c).div_ceil(50);
        let page = rng.random_range(0..pages_in);
        if page == 0 {
            writeln!(pages, "/api/v1/conversations/{id}/messages?limit=50")?;
        } else {
            let last = page * 50 - 1;
            let q = MessageQuery {
                conversation_id: Some(id.clone()),
                order: Order::Asc,
                ..Default::default()
            };
            let position = Position::Time(plan.sent_at(c, last), plan.message_id(c, last));
            let cursor = cursor::encode("messages", &cursor::messages_fingerprint(&q), &position);
            writeln!(
                pages,
                "/api/v1/conversations/{id}/messages?limit=50&cursor={cursor}"
            )?;
        }
    }
    let mut posts = std::fs::File::create(out.join("post_first_pages.txt"))?;
    for _ in 0..20_000 {
        let c = rng.random_range(0..plan.conversations);
        writeln!(
            posts,
            "/api/v1/messages?post_token={}&limit=50",
            plan.post_token(c)
        )?;
    }
    println!(
        "wrote {}/conversation_pages.txt and post_first_pages.txt",
        out.display()
    );
    Ok(())
}
