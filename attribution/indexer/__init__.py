"""The indexer: follows the ledger and the asset registry of one deployment, verifies every batch from DA, stores
records with their proofs in SQLite or PostgreSQL (SQLAlchemy Core, Alembic migrations) and serves dApp queries.
See docs/verify.md."""
