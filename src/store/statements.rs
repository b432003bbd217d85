//! Write statements, built once for both databases.

use super::sql::{Dialect, Param, Sql};
use super::{NewClick, NewEvent, NewMessage, Registration, json_text};

fn text(s: &str) -> Param {
    Param::Text(s.to_owned())
}

fn opt(s: &Option<String>) -> Param {
    Param::OptText(s.clone())
}

/// Inserts a message unless its id exists; returns its `seq` when inserted.
pub fn insert_message(d: Dialect, m: &NewMessage) -> Sql {
    let mut sql = Sql::new(
        d,
        "insert into message (id, source, event_type, conversation_id, post_token, \
         message_type, text, sender_side, sender_type, sender_id, receiver_side, receiver_id, \
         sent_at, sent_at_raw, received_at, raw_body, data, metadata)",
    );
    sql.push(" values (").list(vec![
        text(&m.id),
        text(m.source.as_str()),
        text(&m.event_type),
        text(&m.conversation.id),
        opt(&m.conversation.post_token),
        text(&m.message_type),
        opt(&m.text),
        opt(&m.sender_side),
        opt(&m.sender_type),
        opt(&m.sender_id),
        opt(&m.receiver_side),
        opt(&m.receiver_id),
        Param::Time(m.sent_at),
        opt(&m.sent_at_raw),
        Param::Time(m.received_at),
        Param::Bytes(m.raw_body.clone()),
    ]);
    sql.push(", ").bind_json(json_text(&m.data));
    sql.push(", ").bind_json(json_text(&m.metadata));
    sql.push(") on conflict (id) do nothing returning seq");
    sql
}

/// Creates or updates the conversation of a newly stored message.
pub fn upsert_conversation(d: Dialect, m: &NewMessage) -> Sql {
    let (least, greatest) = match d {
        Dialect::Postgres => ("least", "greatest"),
        Dialect::Sqlite => ("min", "max"),
    };
    let c = &m.conversation;
    let mut sql = Sql::new(
        d,
        "insert into conversation (id, kind, source, post_token, supply_user_id, \
         demand_user_id, first_message_at, last_message_at, message_count)",
    );
    sql.push(" values (").list(vec![
        text(&c.id),
        text(&c.kind),
        text(m.source.as_str()),
        opt(&c.post_token),
        opt(&c.supply_user_id),
        opt(&c.demand_user_id),
        Param::Time(m.sent_at),
        Param::Time(m.sent_at),
        Param::Int(1),
    ]);
    sql.push(")");
    sql.push(&format!(
        " on conflict (id) do update set \
           post_token = coalesce(conversation.post_token, excluded.post_token), \
           supply_user_id = coalesce(conversation.supply_user_id, excluded.supply_user_id), \
           demand_user_id = coalesce(conversation.demand_user_id, excluded.demand_user_id), \
           first_message_at = {least}(conversation.first_message_at, excluded.first_message_at), \
           last_message_at = {greatest}(conversation.last_message_at, excluded.last_message_at), \
           message_count = conversation.message_count + 1"
    ));
    sql
}

/// Inserts an event unless its dedupe key exists; returns its `seq` when inserted.
pub fn insert_event(d: Dialect, e: &NewEvent) -> Sql {
    let mut sql = Sql::new(
        d,
        "insert into event (dedupe_key, event_type, subtype, subject_id, post_token, \
         raw_body, received_at, payload, metadata)",
    );
    sql.push(" values (").list(vec![
        text(&e.dedupe_key),
        text(&e.event_type),
        opt(&e.subtype),
        opt(&e.subject_id),
        opt(&e.post_token),
        Param::Bytes(e.raw_body.clone()),
        Param::Time(e.received_at),
    ]);
    sql.push(", ").bind_json(Some(e.payload.to_string()));
    sql.push(", ").bind_json(json_text(&e.metadata));
    sql.push(") on conflict (dedupe_key) do nothing returning seq");
    sql
}

/// Inserts a click; returns its `seq`.
pub fn insert_click(d: Dialect, c: &NewClick) -> Sql {
    let mut sql = Sql::new(
        d,
        "insert into click (id, version, source, post_token, conversation_id, user_id, \
         peer_id, side, rule, url, outcome, raw_body, received_at, provider_data)",
    );
    sql.push(" values (").list(vec![
        text(&c.id),
        text(&c.version),
        opt(&c.source),
        opt(&c.post_token),
        opt(&c.conversation_id),
        opt(&c.user_id),
        opt(&c.peer_id),
        opt(&c.side),
        opt(&c.rule),
        opt(&c.url),
        text(&c.outcome),
        Param::Bytes(c.raw_body.clone()),
        Param::Time(c.received_at),
    ]);
    sql.push(", ").bind_json(Some(c.provider_data.to_string()));
    sql.push(") returning seq");
    sql
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
        assert_eq!(sql(Dialect::Postgres), "x values ($1, $2::text::json)");
        assert_eq!(sql(Dialect::Sqlite), "x values (?1, ?2)");
    }
}
