"""The HTTP API: `podrec serve` (app.py). Plain reads of what the graph published, events in, impressions out."""
