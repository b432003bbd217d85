-- replies an endpoint asked for in its answer to a push, and their fate. one row per record
-- and endpoint at most: the key is what makes a reply go once, however often the push is
-- retried or replayed. a row is committed as pending (or refused) before any call to divar;
-- it is sending while the call is made, and a call cut off by a stop is unknown, never made
-- again on its own.
create table outbox (
    id              integer primary key autoincrement,
    endpoint        text not null,
    kind            text not null,                -- the record answered: message | event | click
    seq             integer not null,
    record_id       text,                         -- divar's message id, where there is one
    conversation_id text,
    status          text not null,                -- pending | sending | sent | failed | unknown | refused
    reply           text not null,                -- the reply as the endpoint answered it
    target          text,                         -- which api answers the record, and whom (json)
    request         text,                         -- method, url and body sent, without credentials
    credential      text,                         -- api key, or the vault user whose token was used
    answer          text,                         -- divar's answer, or why there was no call
    attempts        integer not null default 0,
    created_at      integer not null,
    updated_at      integer not null,
    unique (endpoint, kind, seq)
);
create index outbox_status_idx on outbox (status, id);
create index outbox_endpoint_idx on outbox (endpoint, id);
create index outbox_conversation_idx on outbox (conversation_id, id) where conversation_id is not null;
