"""The live benchmark's Tornado baselines: just enough of classcast's live protocol (version 1,
docs/protocol.md) over WebSockets at /ws for examples/live_bench.rs's generator to run
unchanged against it (`live_bench --against tornado|tornado-sqlite`, which starts this).

- A board's `hello` (its token) is answered with `welcome` and its `state`.
- A teacher's `hello` (its token and `boards`) with `welcome` and the `state` of each board
  of theirs it names; a board that is not theirs is an `error not_found`.
- A teacher's `command` (`present`, `next`, `prev`, `goto`, `end`) on a board it follows:
  the new state goes to the board's pages and to the teachers following it, and the command's
  `ack` to its sender. A command that changes nothing is acked with the current version and
  sends nothing, as classcast does.

`--store memory` keeps the states in a dict and nothing else. `--store sqlite` also commits
each new state to SQLite (write-ahead log, `synchronous = FULL`: the commit waits for the
log's sync) before the ack and the state leave, as classcast's acks mean "on disk". The commit
runs in the handler, blocking the event loop while it syncs: what a Tornado app of 2016 with
the standard library's sqlite3 does.

Accounts, boards and lessons come from `--seed FILE` (written by live_bench; `--database` is
the SQLite file):
{"boards": [{"id", "token"}], "teachers": [{"token", "name", "boards": [ids], "lessons": [ids]}],
 "slides": N}. Prints `listening on http://127.0.0.1:PORT/` first, as `classcast serve` does.
"""

import argparse
import json
import sqlite3
import time

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
import tornado.websocket

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def now_ms():
    return int(time.time() * 1000)


class Board:
    __slots__ = ("id", "version", "lesson", "index", "presenter", "pages", "teachers", "text")

    def __init__(self, board_id):
        self.id = board_id
        self.version = 0
        self.lesson = None  # (lesson id, slides)
        self.index = 0
        self.presenter = None
        self.pages = set()  # the board's own connections
        self.teachers = set()  # teacher connections following it
        self.text = self.render()

    def render(self):
        """The `state` message, encoded once for every connection that gets it."""
        lesson = slide = None
        if self.lesson is not None:
            lesson_id, slides = self.lesson
            lesson = {"id": lesson_id, "title": "Benchmark lesson", "slide_count": len(slides)}
            slide = slides[self.index]
        state = {
            "board": self.id,
            "version": self.version,
            "lesson": lesson,
            "slide_index": self.index,
            "slide": slide,
            "blanked": False,
            "revealed": False,
            "timer": {"duration_ms": 0, "running": False, "ends_at": None, "remaining_ms": 0},
            "video": {"playing": False, "position_ms": 0, "since": None},
            "presenter": self.presenter,
        }
        return dumps({"type": "state", "board": self.id, "state": state})


class CommandError(Exception):
    pass


class World:
    def __init__(self, seed, database):
        slides = [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "kind": "text",
                "title": f"Slide {i}",
                "html": "<p>Some <strong>text</strong></p>",
                "media": None,
                "seconds": None,
            }
            for i in range(seed["slides"])
        ]
        self.boards = {b["id"]: Board(b["id"]) for b in seed["boards"]}
        self.board_tokens = {b["token"]: b["id"] for b in seed["boards"]}
        self.teachers = {}
        for n, t in enumerate(seed["teachers"]):
            self.teachers[t["token"]] = {
                "id": f"00000000-0000-4000-9000-{n:012d}",
                "name": t["name"],
                "boards": set(t["boards"]),
                "lessons": {lesson: slides for lesson in t["lessons"]},
            }
        self.db = None
        if database is not None:
            self.db = sqlite3.connect(database, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS board_state"
                " (board TEXT NOT NULL, version INTEGER NOT NULL, command TEXT NOT NULL, state TEXT NOT NULL,"
                "  PRIMARY KEY (board, version))"
            )

    def apply(self, teacher, board, op, args):
        """Changes `board` as `op` says; False when it changes nothing."""
        if op == "present":
            slides = teacher["lessons"].get(args.get("lesson"))
            if slides is None:
                raise CommandError("not_found")
            index = args.get("slide", 0)
            if not isinstance(index, int) or not 0 <= index < len(slides):
                raise CommandError("invalid_command")
            board.lesson = (args["lesson"], slides)
            board.index = index
            board.presenter = {"name": teacher["name"]}
            return True
        if op == "end":
            if board.lesson is None:
                return False
            board.lesson = None
            board.index = 0
            return True
        if op not in ("next", "prev", "goto"):
            raise CommandError("invalid_command")
        if board.lesson is None:
            raise CommandError("not_presenting")
        count = len(board.lesson[1])
        if op == "goto":
            index = args.get("slide")
            if not isinstance(index, int) or not 0 <= index < count:
                raise CommandError("invalid_command")
        else:
            index = min(max(board.index + (1 if op == "next" else -1), 0), count - 1)
        if index == board.index:
            return False
        board.index = index
        return True

    def store(self, board, command_id):
        if self.db is not None:
            # One transaction per change, synced before anyone hears of it.
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT INTO board_state (board, version, command, state) VALUES (?, ?, ?, ?)",
                (board.id, board.version, command_id, board.text),
            )
            self.db.execute("COMMIT")


class LiveSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, world):
        self.world = world
        self.role = None
        self.teacher = None
        self.following = set()
        self.board = None

    def check_origin(self, origin):
        return True

    def send(self, text):
        try:
            self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            pass

    def error(self, code, **fields):
        self.send(dumps({"type": "error", "code": code, "message": code, **fields}))

    def on_message(self, text):
        try:
            msg = json.loads(text)
        except ValueError:
            return self.error("malformed")
        kind = msg.get("type")
        if self.role is None:
            return self.hello(msg) if kind == "hello" else self.close(4400, "hello first")
        if kind == "command" and self.role == "teacher":
            return self.command(msg)
        if kind == "ping":
            return self.send(dumps({"type": "pong", "t0": msg.get("t0"), "server_time": now_ms()}))
        if kind == "rendered":
            return None
        return self.error("malformed")

    def hello(self, msg):
        world = self.world
        welcome = {"type": "welcome", "protocol": 1, "role": msg.get("role"), "server_time": now_ms(), "heartbeat_ms": 15000}
        if msg.get("role") == "board":
            board_id = world.board_tokens.get(msg.get("token"))
            if board_id is None:
                return self.close(4401, "unauthenticated")
            self.role = "board"
            self.board = world.boards[board_id]
            self.board.pages.add(self)
            welcome["board_id"] = board_id
            self.send(dumps(welcome))
            return self.send(self.board.text)
        teacher = world.teachers.get(msg.get("token"))
        if msg.get("role") != "teacher" or teacher is None:
            return self.close(4401, "unauthenticated")
        self.role = "teacher"
        self.teacher = teacher
        welcome["account"] = {"id": teacher["id"], "name": teacher["name"]}
        self.send(dumps(welcome))
        for entry in msg.get("boards", []):
            board_id = entry.get("board")
            if board_id not in teacher["boards"]:
                self.error("not_found", board=board_id)
                continue
            board = world.boards[board_id]
            board.teachers.add(self)
            self.following.add(board_id)
            self.send(board.text)

    def command(self, msg):
        command_id, board_id = msg.get("id"), msg.get("board")
        if board_id not in self.following:
            return self.error("not_found", id=command_id, board=board_id)
        board = self.world.boards[board_id]
        try:
            changed = self.world.apply(self.teacher, board, msg.get("op"), msg.get("args") or {})
        except CommandError as refused:
            return self.error(str(refused), id=command_id, board=board_id)
        if changed:
            # A hybrid logical clock as classcast's: milliseconds × 1024 + a counter.
            board.version = max(board.version + 1, now_ms() << 10)
            board.text = board.render()
            self.world.store(board, command_id)
        self.send(dumps({"type": "ack", "id": command_id, "board": board_id, "version": board.version}))
        if changed:
            for page in board.pages:
                page.send(board.text)
            for teacher in board.teachers:
                teacher.send(board.text)

    def on_close(self):
        if self.board is not None:
            self.board.pages.discard(self)
        for board_id in self.following:
            self.world.boards[board_id].teachers.discard(self)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", required=True)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--database", default="tornado-baseline.sqlite3", help="the SQLite file of --store sqlite")
    args = parser.parse_args()
    with open(args.seed) as f:
        seed = json.load(f)
    world = World(seed, args.database if args.store == "sqlite" else None)
    app = tornado.web.Application([(r"/ws", LiveSocket, {"world": world})])
    # The same listen backlog as classcast: a storm of boards arrives at once.
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", backlog=4096)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print(f"classcast baseline (tornado, {args.store}) listening on http://127.0.0.1:{port}/", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
