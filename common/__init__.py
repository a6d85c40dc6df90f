"""Cross-service plumbing: configuration, the database dependency, the event outbox, domain errors and
structured logging. No domain logic lives here."""
