"""User, affinity and global listening stats in MongoDB, kept incrementally from raw_user_events."""
