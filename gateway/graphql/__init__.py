"""The GraphQL layer: schema composition, per-request context, errors, limits and the HTTP view."""
