"""The shared plumbing is tested inside real nameko containers, so eventlet patches first."""

import eventlet

eventlet.monkey_patch()
