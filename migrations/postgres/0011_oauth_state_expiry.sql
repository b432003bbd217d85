-- every new sign-in deletes the expired ones first (where expires_at < now): along an index,
-- not a scan of every sign-in under way.
create index oauth_state_expires_at on oauth_state (expires_at);
