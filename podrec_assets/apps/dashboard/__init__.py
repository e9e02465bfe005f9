"""The dashboard (Streamlit): what listeners do now, which episodes they engage with, a listener's list beside their
history, the models and how they serve, and the data's quality. `podrec dashboard` runs APP on 127.0.0.1:8501.

Pages are in views/ (one `render()` each), page furniture and connections in common.py, the Dagster instance's check
outcomes in checks.py; every query is a plain function in lib/dashboard/.
"""

from pathlib import Path

APP = Path(__file__).with_name("app.py")
