-- Indexes that let erasure and export find one person's, conversation's or post's rows
-- without reading whole tables, and retention find old refused deliveries. Partial: most
-- rows have no user id (the events API's messages carry none), so they cost nothing there.
create index message_sender_idx on message (sender_id) where sender_id is not null;
create index message_receiver_idx on message (receiver_id) where receiver_id is not null;
create index conversation_supply_idx on conversation (supply_user_id) where supply_user_id is not null;
create index conversation_demand_idx on conversation (demand_user_id) where demand_user_id is not null;
create index click_user_idx on click (user_id) where user_id is not null;
create index click_peer_idx on click (peer_id) where peer_id is not null;
create index event_subject_idx on event (subject_id) where subject_id is not null;
create index event_post_idx on event (post_token) where post_token is not null;
create index rejected_received_idx on rejected (received_at);
