#!/usr/bin/env python3
"""A real SMTP server for the email tests (aiosmtpd), with AUTH.

It accepts one user name and password (PLAIN or LOGIN), stores every
message it accepts as a JSON file in a directory, and prints `READY <port>`
on stdout once it listens, so the test learns the port it was given.

  smtp_server.py --dir DIR --username U --password P
                 [--tls plain|starttls|implicit --cert CERT --key KEY]

Each stored file is `{"mail_from", "rcpt_tos", "data", "auth_login"}`, where
`data` is the message exactly as received. Recipients whose local part is
`busy` are refused with 451 (a transient failure) and `nobody` with 550.
The server runs until it is killed.
"""

import argparse
import asyncio
import itertools
import json
import os
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# Plain mode takes AUTH without TLS on purpose: it is a loopback test server.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


class Store:
    """Writes each accepted message to its own file, atomically."""

    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "busy":
            return "451 4.3.0 Mailbox busy, try again later"
        if local == "nobody":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", errors="replace"),
            "auth_login": (session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None),
        }
        name = f"{next(self.counter):04d}.json"
        partial = os.path.join(self.directory, name + ".part")
        with open(partial, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.rename(partial, os.path.join(self.directory, name))
        return "250 2.0.0 Message accepted"


def authenticator(username, password):
    def check(server, session, envelope, mechanism, auth_data):
        accepted = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)

    return check


async def serve(args):
    context = None
    if args.tls != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    def protocol():
        return SMTP(
            Store(args.dir),
            hostname="hermes-test",
            tls_context=context if args.tls == "starttls" else None,
            require_starttls=args.tls == "starttls",
            auth_required=True,
            # Plain mode has no TLS to require; implicit mode's TLS is not seen
            # by aiosmtpd as STARTTLS, so only STARTTLS mode requires it.
            auth_require_tls=args.tls == "starttls",
            authenticator=authenticator(args.username, args.password),
            decode_data=False,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        protocol, host="127.0.0.1", port=0, ssl=context if args.tls == "implicit" else None
    )
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--tls", choices=["plain", "starttls", "implicit"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    if args.tls != "plain" and not (args.cert and args.key):
        parser.error("--tls starttls|implicit needs --cert and --key")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
