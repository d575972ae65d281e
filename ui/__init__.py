"""Streamlit pages (later issue)."""
