"""The bounded contexts, one nameko service each. ``DEPLOYED`` lists those the platform runs, in start
order, with the class `nameko run` starts."""

DEPLOYED = {
    "users": "services.users.service:UsersService",
    "rooms": "services.rooms.service:RoomsService",
    "messages": "services.messages.service:MessagesService",
}
