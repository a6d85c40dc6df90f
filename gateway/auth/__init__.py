"""Authentication: JWTs, cookies, CSRF and per-request credentials (CONTRACT §9)."""
