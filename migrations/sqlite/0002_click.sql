-- every button click Divar asked us about, and what we answered.

create table click (
    seq             integer primary key autoincrement,
    id              text not null unique,
    version         text not null,               -- legacy | v2 | dynamic_action
    source          text,
    post_token      text,
    conversation_id text,
    user_id         text,
    peer_id         text,
    side            text,                        -- supply | demand
    provider_data   text not null,
    rule            text,
    url             text,
    outcome         text not null,               -- redirect | text | no_match
    raw_body        blob not null,
    received_at     integer not null
);
create index click_received_idx on click (received_at, seq);
create index click_post_received_idx on click (post_token, received_at, seq);
create index click_conversation_received_idx on click (conversation_id, received_at, seq);
