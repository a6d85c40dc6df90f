"""The ``users`` service: accounts, password hashes, login rate limits and profile data.

Entry points are in :mod:`services.users.service` (``nameko run services.users.service``).
"""
