"""The rules of docs/rules.md as data and pure functions: no Flask, no SQLAlchemy, no clock, no I/O."""
