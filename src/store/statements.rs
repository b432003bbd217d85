//! Write statements, built once for both databases.

use super::Registration;
use super::sql::{Dialect, Param, Sql};

fn text(s: &str) -> Param {
    Param::Text(s.to_owned())
}

/// Inserts a registration.
pub fn insert_registration(d: Dialect, r: &Registration) -> Sql {
    let mut sql = Sql::new(
        d,
        "insert into registration (id, post_token, endpoint, key_digest, created_at)",
    );
    sql.push(" values (").list(vec![
        text(&r.id),
        text(&r.post_token),
        text(&r.endpoint),
        text(&r.key_digest),
        Param::Time(r.created_at),
    ]);
    sql.push(")");
    sql
}

/// Removes a registration.
pub fn delete_registration(d: Dialect, id: &str) -> Sql {
    let mut sql = Sql::new(d, "delete from registration where id = ");
    sql.bind(text(id));
    sql
}

/// Removes the rows of `table` (stream tickets, inbox sessions) whose time is up.
fn prune_expired(d: Dialect, table: &str, now: chrono::DateTime<chrono::Utc>) -> Sql {
    let mut prune = Sql::new(d, &format!("delete from {table} where expires_at <= "));
    prune.bind(Param::Time(now));
    prune
}

/// Stores a stream ticket's digest, first removing the tickets that have expired.
pub fn insert_stream_ticket(
    d: Dialect,
    digest: &str,
    token_digest: &str,
    filters: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> [Sql; 2] {
    let values = vec![
        text(digest),
        text(token_digest),
        text(filters),
        Param::Time(expires_at),
    ];
    let columns = "digest, token_digest, filters, expires_at";
    insert_expiring(d, "stream_ticket", columns, values, now)
}

/// Inserts a row of `table` that expires, first removing the rows of it that have expired.
fn insert_expiring(
    d: Dialect,
    table: &str,
    columns: &str,
    values: Vec<Param>,
    now: chrono::DateTime<chrono::Utc>,
) -> [Sql; 2] {
    let prune = prune_expired(d, table, now);
    let mut insert = Sql::new(d, &format!("insert into {table} ({columns}) values ("));
    insert.list(values).push(")");
    [prune, insert]
}

/// Takes a ticket that has not expired: the row is deleted, so it opens one stream only.
pub fn redeem_stream_ticket(d: Dialect, digest: &str, now: chrono::DateTime<chrono::Utc>) -> Sql {
    let mut sql = Sql::new(d, "delete from stream_ticket where digest = ");
    sql.bind(text(digest))
        .push(" and expires_at > ")
        .bind(Param::Time(now))
        .push(" returning token_digest, filters");
    sql
}

/// Stores an inbox session's digest, first removing the sessions that have expired.
pub fn insert_inbox_session(
    d: Dialect,
    digest: &str,
    token_digest: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> [Sql; 2] {
    let values = vec![text(digest), text(token_digest), Param::Time(expires_at)];
    let columns = "digest, token_digest, expires_at";
    insert_expiring(d, "inbox_session", columns, values, now)
}

/// The token digest of a session that has not expired.
pub fn inbox_session(d: Dialect, digest: &str, now: chrono::DateTime<chrono::Utc>) -> Sql {
    let mut sql = Sql::new(d, "select token_digest from inbox_session where digest = ");
    sql.bind(text(digest))
        .push(" and expires_at > ")
        .bind(Param::Time(now));
    sql
}

/// Ends a session.
pub fn delete_inbox_session(d: Dialect, digest: &str) -> Sql {
    let mut sql = Sql::new(d, "delete from inbox_session where digest = ");
    sql.bind(text(digest));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_placeholders_are_cast_in_postgres_only() {
        let sql = |d| {
            let mut sql = Sql::new(d, "x values (");
            sql.list(vec![Param::Int(1)])
                .push(", ")
                .bind_json(None)
                .push(")");
            sql.text
        };
        assert_eq!(sql(Dialect::POSTGRES), "x values ($1, $2::text::json)");
        assert_eq!(sql(Dialect::SQLITE), "x values ($1, $2)");
    }
}
