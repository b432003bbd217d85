-- conversations, messages and other events received from Divar.
-- Times are integer microseconds since the Unix epoch (UTC).

create table conversation (
    id               text primary key,
    kind             text not null,
    source           text not null,
    post_token       text,
    supply_user_id   text,
    demand_user_id   text,
    first_message_at integer not null,
    last_message_at  integer not null,
    message_count    integer not null
);
create index conversation_activity_idx on conversation (last_message_at desc, id desc);
create index conversation_post_activity_idx on conversation (post_token, last_message_at desc, id desc);

create table message (
    seq             integer primary key autoincrement,
    id              text not null unique,        -- Divar's message id: the idempotency key
    source          text not null,
    event_type      text not null,
    conversation_id text not null,
    post_token      text,
    message_type    text not null,
    text            text,
    sender_side     text,
    sender_type     text,
    sender_id       text,
    receiver_side   text,
    receiver_id     text,
    sent_at         integer not null,
    sent_at_raw     text,
    received_at     integer not null,
    data            text,
    metadata        text,
    raw_body        blob not null
);
create index message_conversation_idx on message (conversation_id, sent_at, id);
create index message_post_idx on message (post_token, sent_at, id);
create index message_sent_idx on message (sent_at, id);

create table event (
    seq         integer primary key autoincrement,
    dedupe_key  text not null unique,
    event_type  text not null,
    subtype     text,
    subject_id  text,
    post_token  text,
    payload     text not null,
    metadata    text,
    raw_body    blob not null,
    received_at integer not null
);
create index event_received_idx on event (received_at, seq);
create index event_type_received_idx on event (event_type, received_at, seq);
