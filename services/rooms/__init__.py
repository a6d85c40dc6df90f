"""The ``rooms`` service: topics, rooms and their participants.

Users are known by id only (no usernames, no foreign keys into another context's schema); the gateway
resolves usernames through the users service and orders participants by username itself.
Entry points are in :mod:`services.rooms.service` (``nameko run services.rooms.service``).
"""
