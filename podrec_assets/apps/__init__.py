"""The faces of the product: the HTTP API (api/) and the dashboard (dashboard/). They read what the graph wrote."""
