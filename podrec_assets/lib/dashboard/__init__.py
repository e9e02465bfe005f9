"""What the dashboard (apps/dashboard/) reads, as plain functions: the Delta tables through DuckDB (lake.py), the
listener events and quarantine (activity.py), engagement and similarity (episodes.py), listeners (listeners.py) and
models (models.py). No Streamlit and no Dagster here: every function takes its sources as arguments and returns
plain values or pandas DataFrames, empty when a table does not exist yet."""
