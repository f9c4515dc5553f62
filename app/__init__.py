"""Streamlit UI. Talks to the engine only through the database; never imports torch."""
