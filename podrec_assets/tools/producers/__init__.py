"""Event producers: synthetic listeners, MovieLens-100k replay and raw file replay, all through `send_messages`."""
