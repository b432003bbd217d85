-- deliveries that carried a good key but could not be stored (not json, a required field
-- missing), kept to be run through ingestion again after an upgrade. one row per distinct
-- body: divar's redeliveries of it are counted, not stored again.

create table rejected (
    id               integer primary key autoincrement,
    digest           text not null unique,       -- sha-256 of the body, hex
    reason           text not null,
    raw_body         blob not null,
    received_at      integer not null,
    last_received_at integer not null,
    deliveries       integer not null default 1
);
