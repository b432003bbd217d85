-- signed-in browser sessions of the web inbox (/inbox). Only the session cookie's sha-256
-- digest is kept, with the digest of the API client token it was opened with: a token
-- removed from the settings ends its sessions. Signing out deletes the row.

create table inbox_session (
    digest       text primary key,
    token_digest text not null,
    expires_at   timestamptz not null
);
create index inbox_session_expires_idx on inbox_session (expires_at);
