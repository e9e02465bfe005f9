"""Serving: the hybrid recommendations (hybrid.py, recommendations.py, assets.py), their atomic publication to
MongoDB (publish.py) and the lookups that read them (lookup.py)."""
