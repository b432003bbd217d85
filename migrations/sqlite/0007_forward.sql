-- forwarding stored records to the app's own endpoints: each endpoint's state, how far it
-- has read each log (by seq), what it has read but not yet delivered, what it gave up on,
-- and every attempt.

create table forward_endpoint (
    name            text primary key,
    paused          integer not null default 0,
    disabled_reason text,                        -- set when the receiver answered 410
    revision        integer not null default 0,   -- bumped by the cli: re-read state and pending
    last_success_at integer,
    last_error      text,
    last_error_at   integer
);

create table forward_cursor (
    endpoint text not null,
    kind     text not null,                      -- message | event | click
    seq      integer not null,                    -- every record up to here is read
    primary key (endpoint, kind)
);

create table forward_pending (
    endpoint    text not null,
    kind        text not null,
    seq         integer not null,
    order_key   text,                            -- records of one key go one at a time
    received_at integer not null,
    attempts    integer not null default 0,
    next_at     integer not null,
    body        text not null,                   -- the json posted
    primary key (endpoint, kind, seq)
);

create table forward_dead (
    id          integer primary key autoincrement,
    endpoint    text not null,
    kind        text not null,
    seq         integer not null,
    order_key   text,
    received_at integer not null,
    attempts    integer not null,
    last_error  text not null,
    dead_at     integer not null,
    body        text not null,
    unique (endpoint, kind, seq)
);
create index forward_dead_endpoint_idx on forward_dead (endpoint, id);

create table forward_attempt (
    id          integer primary key autoincrement,
    endpoint    text not null,
    kind        text not null,
    seq         integer not null,
    attempt     integer not null,
    outcome     text not null,                   -- delivered | failed | dead | gone
    status_code integer,
    latency_ms  integer not null,
    error       text,
    response    text,                            -- the first kib of the answer
    at          integer not null
);
create index forward_attempt_endpoint_idx on forward_attempt (endpoint, id);
create index forward_attempt_at_idx on forward_attempt (at);
