"""Use cases: check access, lock, ask the rules, write. They take a Session and flush; never commit."""
