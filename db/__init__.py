"""Storage layer: SQLAlchemy models, engine setup, and small query helpers. Imports sqlalchemy/alembic only."""
