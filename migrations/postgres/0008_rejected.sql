-- deliveries that carried a good key but could not be stored (not json, a required field
-- missing), kept to be run through ingestion again after an upgrade. one row per distinct
-- body: divar's redeliveries of it are counted, not stored again.

create table rejected (
    id               bigint generated always as identity primary key,
    digest           text not null unique,       -- sha-256 of the body, hex
    reason           text not null,
    raw_body         bytea not null,
    received_at      timestamptz not null,
    last_received_at timestamptz not null,
    deliveries       bigint not null default 1
);
