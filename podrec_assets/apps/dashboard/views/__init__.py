"""The dashboard's pages, one module each with a `render()` that draws the page from the current data."""
