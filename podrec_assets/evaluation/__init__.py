"""Offline evaluation that mirrors production: `podrec evaluate --protocol temporal` (temporal.py)."""
