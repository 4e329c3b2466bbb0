"""The rules of policy.md as data and pure functions: no Flask, no SQLAlchemy, no clock, no I/O."""
