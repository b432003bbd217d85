-- legacy webhook registrations: the per-registration identification key is kept only as
-- its sha-256 digest, and is valid only for messages of its post.

create table registration (
    id          text primary key,
    post_token  text not null,
    endpoint    text not null,
    key_digest  text not null unique,
    created_at  timestamptz not null
);
create index registration_post_idx on registration (post_token);
