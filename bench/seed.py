"""Data for the workloads, created through the platform's own doors: users register and rooms are
created and joined through the GraphQL API; the 200 messages of the read mix's busy room are posted
through the messages service's RPC (``messages.post_message``, what the chat socket calls). Tokens are
minted with the stack's JWT secret (the §9.1 payload), so no workload spends its time logging in and the
login rate limits (D7) never interfere.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

PASSWORD = "Bench-correct-horse-7391"
TOPICS = ["Python", "Mathematics", "Physics", "Chemistry", "Biology", "History", "Literature", "Music"]
SEARCH_TERM = "algebra"
WORDS = ["study", "group", "exam", "notes", "practice", "questions", "project", "reading", "lab", "review"]
TOKEN_LIFETIME = 6 * 3600

_addresses = itertools.count(1)


def client_address() -> str:
    """A distinct client address per simulated client (the gateway trusts the loopback proxy)."""
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"


@dataclass
class User:
    index: int
    id: str
    username: str
    email: str
    token: str


@dataclass
class Room:
    id: str
    name: str
    slug: str
    host: User
    topic: str
    members: list[User] = field(default_factory=list)


class SeedError(RuntimeError):
    pass


class Seeder:
    """``async with Seeder(url, amqp_uri, secret) as seeder: ...``"""

    def __init__(self, url: str, amqp_uri: str, jwt_secret: str, concurrency: int = 8) -> None:
        self.url = url.rstrip("/") + "/graphql/"
        self.amqp_uri = amqp_uri
        self.jwt_secret = jwt_secret
        self.users: list[User] = []
        self.semaphore = asyncio.Semaphore(concurrency)
        self.client: httpx.AsyncClient | None = None
        self.rpc: Any = None
        self.readmix_rooms: list[Room] = []
        self.busy_room: Room | None = None
        self.chat_rooms: list[Room] = []
        self.fanout_room: Room | None = None

    async def __aenter__(self) -> Seeder:
        from gateway.rpc import RpcClient

        self.client = httpx.AsyncClient(timeout=60)
        self.rpc = RpcClient(self.amqp_uri, default_timeout=30, name="bench-seed")
        await self.rpc.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.rpc is not None:
            await self.rpc.close()

    # --- plumbing ------------------------------------------------------------------------------------

    def mint(self, email: str) -> str:
        issued = int(time.time())
        payload = {"email": email, "exp": issued + TOKEN_LIFETIME, "origIat": issued}
        return jwt.encode(payload, self.jwt_secret, algorithm="HS256")

    async def gql(self, query: str, variables: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        assert self.client is not None
        headers = {"X-Forwarded-For": client_address()}
        if token:
            headers["Authorization"] = f"JWT {token}"
        async with self.semaphore:
            response = await self.client.post(self.url, json={"query": query, "variables": variables or {}}, headers=headers)
        self.client.cookies.clear()  # no cookie jar: a JWT cookie would make mutations need CSRF (D3)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise SeedError(f"{query.split('(')[0].strip()} failed: HTTP {response.status_code} {body}")
        return body["data"]

    # --- users -----------------------------------------------------------------------------------------

    async def ensure_users(self, count: int) -> list[User]:
        """The first ``count`` bench users, registering the missing ones."""
        missing = range(len(self.users), count)
        if missing:
            new = await asyncio.gather(*(self._register(index) for index in missing))
            self.users.extend(new)
            self.users.sort(key=lambda user: user.index)
        return self.users[:count]

    async def _register(self, index: int) -> User:
        username = f"bench{index:04d}"
        email = f"{username}@bench.example.com"
        data = await self.gql(
            """mutation Register($u: String!, $n: String!, $e: String!, $p: String!) {
                 registerUser(username: $u, name: $n, email: $e, password1: $p, password2: $p) {
                   success user { id username } } }""",
            {"u": username, "n": f"Bench User {index}", "e": email, "p": PASSWORD},
        )
        user = data["registerUser"]["user"]
        await asyncio.sleep(0)  # the token's origIat must not precede the account (§9.1)
        return User(index, user["id"], user["username"], email, self.mint(email))

    async def login_once(self, user: User) -> str:
        """One real login (``tokenAuth``), to show the minted tokens are the ones the gateway issues."""
        data = await self.gql(
            "mutation Login($e: String!, $p: String!) { tokenAuth(email: $e, password: $p) { token } }",
            {"e": user.email, "p": PASSWORD},
        )
        return data["tokenAuth"]["token"]

    # --- rooms -----------------------------------------------------------------------------------------

    async def create_room(self, host: User, name: str, topic: str, description: str) -> Room:
        data = await self.gql(
            """mutation CreateRoom($name: String!, $topic: String!, $description: String!) {
                 createRoom(name: $name, topicName: $topic, description: $description) {
                   room { id name slug topic { name } host { id username } } } }""",
            {"name": name, "topic": topic, "description": description},
            token=host.token,
        )
        room = data["createRoom"]["room"]
        return Room(room["id"], room["name"], room["slug"], host, topic, [host])

    async def join(self, room: Room, users: list[User]) -> None:
        async def one(user: User) -> None:
            await self.gql(
                "mutation JoinRoom($id: UUID!) { joinRoom(roomId: $id) { room { id } } }",
                {"id": room.id},
                token=user.token,
            )

        await asyncio.gather(*(one(user) for user in users if user is not room.host))
        room.members.extend(user for user in users if user is not room.host)

    async def post_messages(self, room: Room, count: int) -> None:
        """``count`` messages in ``room``, authored in turn by its members, through ``messages.post_message``."""
        semaphore = asyncio.Semaphore(8)
        rng = random.Random(7)

        async def one(n: int) -> None:
            author = room.members[n % len(room.members)]
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
            async with semaphore:
                await self.rpc.call("messages", "post_message", room.id, author.id, f"Message {n}: {words}")

        # Sequentially in small batches, so created timestamps and seq follow n.
        for start in range(0, count, 8):
            await asyncio.gather(*(one(n) for n in range(start, min(start + 8, count))))

    # --- data sets ---------------------------------------------------------------------------------------

    async def readmix_data(self, rooms: int = 40, messages: int = 200) -> None:
        """Read mix: 8 topics, ``rooms`` rooms hosted by 10 users (3 to 8 participants each, from 30 users;
        descriptions of every eighth room mention "algebra"), and one room holding ``messages`` messages."""
        if self.readmix_rooms:
            return
        users = await self.ensure_users(30)
        hosts = users[:10]
        rng = random.Random(42)
        specs = []
        for i in range(rooms):
            words = " ".join(rng.choice(WORDS) for _ in range(8))
            if i % 8 == 3:
                words += f" with {SEARCH_TERM} exercises"
            specs.append((hosts[i % len(hosts)], f"Study room {i:02d}", TOPICS[i % len(TOPICS)], f"Room {i}: {words}."))
        created: list[Room] = []
        # Rooms of one host are created one after another (slugs and names are per host).
        for batch in range(0, rooms, len(hosts)):
            created.extend(await asyncio.gather(*(self.create_room(*spec) for spec in specs[batch : batch + len(hosts)])))
        for i, room in enumerate(created):
            others = [user for user in users if user is not room.host]
            await self.join(room, rng.sample(others, 2 + i % 6))
        self.readmix_rooms = created
        self.busy_room = created[0]
        await self.post_messages(self.busy_room, messages)

    async def chat_data(self, rooms: int = 10, members: int = 10) -> list[Room]:
        """Chat: ``rooms`` rooms of ``members`` participants each (users 30 onwards), the host included."""
        if len(self.chat_rooms) >= rooms and all(len(room.members) >= members for room in self.chat_rooms[:rooms]):
            return self.chat_rooms[:rooms]
        if self.chat_rooms:
            raise SeedError("chat rooms already exist with another shape")
        users = await self.ensure_users(30 + rooms * members)
        created = await asyncio.gather(
            *(
                self.create_room(users[30 + r * members], f"Chat room {r:02d}", "Python", f"Chat benchmark room {r}.")
                for r in range(rooms)
            )
        )
        for r, room in enumerate(created):
            await self.join(room, users[30 + r * members : 30 + (r + 1) * members])
        self.chat_rooms = list(created)
        return self.chat_rooms

    async def fanout_data(self, listeners: int = 200) -> Room:
        """Fan-out: one room with a sender (its host) and ``listeners`` other participants."""
        if self.fanout_room is not None and len(self.fanout_room.members) >= listeners + 1:
            return self.fanout_room
        users = await self.ensure_users(listeners + 1)
        host = users[listeners]
        room = await self.create_room(host, "Fanout room", "Music", "One sender, many listeners.")
        await self.join(room, users[:listeners])
        self.fanout_room = room
        return room

    async def stored_messages(self, room: Room) -> dict[str, str]:
        """The room's stored messages (id -> body), through the ``messages`` query (newest N, B2)."""
        data = await self.gql(
            "query Stored($h: String!, $s: String!) { messages(hostSlug: $h, roomSlug: $s) { id body } }",
            {"h": room.host.username, "s": room.slug},
        )
        return {message["id"]: message["body"] for message in data["messages"] or [] if message}
