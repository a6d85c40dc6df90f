"""Real-time chat: the chat socket ``/ws/chat/<host>/<slug>`` (CONTRACT §10) and the ``roomEvents``
subscription (B6), both fed by one relay of the messages service's events per gateway process.

* :mod:`~gateway.chat.relay` — the broker side: one AMQP connection, per-room bindings, fan-out to the
  local subscribers of each room, D12 state changes;
* :mod:`~gateway.chat.socket` — the chat socket endpoint;
* :mod:`~gateway.chat.subscriptions` and :mod:`~gateway.chat.graphql_ws` — the GraphQL subscription and
  its WebSocket transport on ``/graphql/``;
* pure parts: :mod:`~gateway.chat.events` (what the relay carries), :mod:`~gateway.chat.frames` (the
  socket's wire format), :mod:`~gateway.chat.limits` (Origin, frame size, rate), :mod:`~gateway.chat.catchup`
  (no gap, no duplicate after ``since``/``after``); message authors come from the gateway's user directory
  (:mod:`gateway.users.directory`).
"""
