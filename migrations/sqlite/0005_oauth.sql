-- the oauth token vault: one row per app-scoped user, both tokens sealed (aes-256-gcm, see
-- src/oauth/vault.rs); never a token in clear text. generation counts rotations, so a write
-- based on an older read changes nothing.

create table oauth_token (
    user_id         text primary key,
    scope           text not null,
    access_token    blob not null,
    refresh_token   blob,
    expires_at      integer not null,
    refresh_due_at  integer,
    generation      integer not null,
    status          text not null,
    failures        integer not null default 0,
    last_error      text,
    lease_owner     text,
    lease_until     integer,
    created_at      integer not null,
    updated_at      integer not null
);
create index oauth_token_due_idx on oauth_token (refresh_due_at);

-- event subscriptions made with a user's token; made again after each refresh. made_generation
-- is the token generation the subscription was last made with.
create table oauth_subscription (
    user_id          text not null,
    event_type       text not null,
    resource_id      text not null,
    metadata         text,
    made_generation  integer not null,
    failures         integer not null default 0,
    last_error       text,
    created_at       integer not null,
    updated_at       integer not null,
    primary key (user_id, event_type, resource_id)
);

-- sign-ins under way: the sha-256 of each state, deleted when used.
create table oauth_state (
    state_digest  text primary key,
    bound         integer not null,
    scope         text not null,
    return_to     text,
    expires_at    integer not null
);
