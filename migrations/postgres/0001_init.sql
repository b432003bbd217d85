-- conversations, messages and other events received from Divar.

create table conversation (
    id               text primary key,
    kind             text not null,             -- POST | BOT
    source           text not null,             -- legacy | events
    post_token       text,
    supply_user_id   text,
    demand_user_id   text,
    first_message_at timestamptz not null,
    last_message_at  timestamptz not null,
    message_count    bigint not null
);
create index conversation_activity_idx on conversation (last_message_at desc, id desc);
create index conversation_post_activity_idx on conversation (post_token, last_message_at desc, id desc);

create table message (
    seq             bigint generated always as identity unique,
    id              text primary key,            -- Divar's message id: the idempotency key
    source          text not null,               -- legacy | events
    event_type      text not null,               -- CHAT_MESSAGE | NEW_MESSAGE | NEW_CHATBOT_MESSAGE
    conversation_id text not null,
    post_token      text,
    message_type    text not null,
    text            text,
    sender_side     text,
    sender_type     text,
    sender_id       text,
    receiver_side   text,
    receiver_id     text,
    sent_at         timestamptz not null,
    sent_at_raw     text,
    received_at     timestamptz not null,
    data            json,                        -- json, not jsonb: jsonb rejects \u0000
    metadata        json,
    raw_body        bytea not null               -- exactly as received
);
create index message_conversation_idx on message (conversation_id, sent_at, id);
create index message_post_idx on message (post_token, sent_at, id);
create index message_sent_idx on message (sent_at, id);

create table event (
    seq         bigint generated always as identity primary key,
    dedupe_key  text not null unique,            -- sha-256 of the canonical body
    event_type  text not null,
    subtype     text,
    subject_id  text,
    post_token  text,
    payload     json not null,
    metadata    json,
    raw_body    bytea not null,
    received_at timestamptz not null
);
create index event_received_idx on event (received_at, seq);
create index event_type_received_idx on event (event_type, received_at, seq);
