"""The dashboard's entry point (`streamlit run`, as `podrec dashboard` does): one page per view, in a sidebar."""

import streamlit as st

from podrec_assets.apps.dashboard import common
from podrec_assets.apps.dashboard.views import episodes, listener, live, models, quality

st.set_page_config(page_title="podrec", page_icon="🎧", layout="wide")
page = st.navigation(
    [
        st.Page(live.render, title="Live", icon=":material/monitoring:", url_path="live", default=True),
        st.Page(episodes.render, title="Episodes", icon=":material/podcasts:", url_path="episodes"),
        st.Page(listener.render, title="Listener", icon=":material/person:", url_path="listener"),
        st.Page(models.render, title="Models", icon=":material/model_training:", url_path="models"),
        st.Page(quality.render, title="Data quality", icon=":material/rule:", url_path="quality"),
    ]
)
common.sidebar()
page.run()
