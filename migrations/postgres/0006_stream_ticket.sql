-- single-use tickets that open a live stream without a bearer header (a browser's
-- EventSource cannot send one). Only the ticket's sha-256 digest is kept, with the digest of
-- the API token it was issued to; redeeming deletes the row.

create table stream_ticket (
    digest       text primary key,
    token_digest text not null,
    expires_at   timestamptz not null
);
create index stream_ticket_expires_idx on stream_ticket (expires_at);
