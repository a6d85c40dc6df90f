"""EduSphere benchmarks: ``make bench`` (or ``python -m bench --help``).

The whole platform is started as real processes (``testing.stack``) on a database and a RabbitMQ
virtual host of its own (``testing.infra``), seeded through the GraphQL API and the services' RPC, and
loaded from separate worker processes over real HTTP and WebSocket connections. Results are printed as a
table and written as JSON under ``bench-results/``.

Modules:

* :mod:`bench.platform` -- the stack under test, its processes' CPU and memory;
* :mod:`bench.seed` -- users, topics, rooms, participants and messages through the API and RPC;
* :mod:`bench.workers` -- the load generators (each runs in its own process);
* :mod:`bench.workloads` -- the five workloads, driving the workers and computing the figures;
* :mod:`bench.report` -- the table, the targets and the JSON/Markdown output;
* :mod:`bench.cli` -- the command line.
"""
