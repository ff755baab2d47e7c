"""The work itself: plain functions over a SQLAlchemy session, no Flask globals."""
