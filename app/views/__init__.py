"""One page per file; app/main.py routes them with st.navigation."""
