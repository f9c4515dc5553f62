"""Pure UI helpers (no database)."""
