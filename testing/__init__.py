"""Test support shared by every test tier: isolated PostgreSQL databases and RabbitMQ virtual hosts,
and real service and gateway processes."""
