"""CLI commands, one module per area; each exposes ``register(app, keys_app, audit_app)``."""
