"""Run ArcadeDB with its Neo4j Bolt plugin on 127.0.0.1 until stdin closes (a test fixture).

Usage: python -m tests.support.arcadedb_server ROOT_DIR BOLT_PORT HTTP_PORT PASSWORD DATABASE
Prints ``READY`` on stdout once the database accepts Bolt connections.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    root, bolt_port, http_port, password, database = argv
    import arcadedb_embedded

    server = arcadedb_embedded.create_server(
        root_path=root,
        root_password=password,
        config={
            "host": "127.0.0.1",
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": int(bolt_port),
            "http_port": int(http_port),
        },
    )
    server.start()
    server.create_database(database)
    print("READY", flush=True)
    sys.stdin.read()  # block until the parent closes our stdin
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
