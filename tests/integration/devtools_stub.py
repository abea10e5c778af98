"""A browser command for test_pipes.py's devtools = port case: the browser
whose --remote-debugging-port is STUB_PORT is this stand-in, which answers
each GET of /json/version badly, one way per connection (ANSWERS, then no
answer at all), and appends every request it read to LOG; any other browser
is the real command, exec'd with the supervisor's arguments.

usage: devtools_stub.py STUB_PORT LOG COMMAND [ARGS...]"""
import json
import os
import socket
import sys
import threading

# (what is sent, then the connection closed); None: nothing is sent and the
# connection is held open.
ANSWERS = [
    None,
    b'SSH-2.0-OpenSSH_9.2\r\n\r\n',
    b'HTTP/1.1 200 OK\r\nX-Pad: ' + b'x' * 100000 + b'\r\n\r\n',
    b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"webSocketDebuggerUrl":',
    b'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n',
    b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnope!',
    b'HTTP/1.1 200 OK\r\nContent-Length: 44\r\n\r\n{"webSocketDebuggerUrl": "ws://x/a b?c=d  "}',
]


def main():
    stub_port, log, real = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    port = next(int(a.split('=', 1)[1]) for a in real if a.startswith('--remote-debugging-port='))
    if port != stub_port:
        os.execvp(real[0], real)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', port))
    srv.listen(8)
    held = []
    for n in range(1000):
        conn, _ = srv.accept()
        conn.settimeout(5)
        req = b''
        try:
            while b'\r\n\r\n' not in req:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                req += chunk
        except OSError:
            pass
        with open(log, 'a') as f:
            f.write(json.dumps(req.decode('latin-1')) + '\n')
        answer = ANSWERS[n] if n < len(ANSWERS) else None
        if answer is None:
            held.append(conn)
            continue
        threading.Thread(target=send_and_close, args=(conn, answer), daemon=True).start()


def send_and_close(conn, answer):
    try:
        conn.sendall(answer)
    except OSError:
        pass  # the client stopped reading an answer that is too long
    conn.close()


if __name__ == '__main__':
    main()
