import Foundation

/// Python clients that hold many TLS connections or scrape in a loop: what curl
/// cannot do. Each takes: port, CA, client certificate, client key, user:password.
enum TLSClientScripts {
    static let prelude = """
        import base64, socket, ssl, sys, time, os
        port = int(sys.argv[1])
        ctx = ssl.create_default_context(cafile=sys.argv[2])
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        auth = base64.b64encode(sys.argv[5].encode()).decode()
        def connect():
            return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")

        """

    /// Scrapes on a new connection each time until the file argv[6] exists (at most a
    /// minute); prints the number of scrapes, of failures, and the server certificate
    /// serials seen in order. Writes the count so far to argv[6] + ".count".
    static let scrapeLoop = prelude + """
        stop = sys.argv[6]
        deadline = time.monotonic() + 60
        total, failures, serials = 0, 0, []
        while time.monotonic() < deadline and not os.path.exists(stop):
            total += 1
            try:
                with connect() as t:
                    serial = t.getpeercert()["serialNumber"]
                    t.sendall(f"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic {auth}\\r\\nConnection: close\\r\\n\\r\\n".encode())
                    data = b""
                    while True:
                        chunk = t.recv(65536)
                        if not chunk: break
                        data += chunk
                    if not data.startswith(b"HTTP/1.1 200") or not data.endswith(b"0\\r\\n\\r\\n"):
                        failures += 1
                    elif not serials or serials[-1] != serial:
                        serials.append(serial)
            except Exception as error:
                failures += 1
                print("failure:", error, file=sys.stderr)
            open(stop + ".count", "w").write(f"{total} {serials[-1] if serials else ''}")
            time.sleep(0.02)
        print(total, failures, ",".join(serials))
        """

    /// Opens argv[6] connections that each send half a request head and stall; writes
    /// argv[7] when all are open; then prints how many the server closed within argv[8] s.
    static let stalledRequests = prelude + """
        count, ready_file, wait = int(sys.argv[6]), sys.argv[7], float(sys.argv[8])
        conns = []
        for _ in range(count):
            t = connect()
            t.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: ")
            conns.append(t)
        open(ready_file, "w").write("ready")
        deadline = time.monotonic() + wait
        closed = 0
        for t in conns:
            t.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                if t.recv(1) == b"": closed += 1
            except (ssl.SSLError, ConnectionResetError):
                closed += 1
            except socket.timeout:
                pass
        print(closed)
        """

    /// Makes one request on a kept-alive connection and prints whether the server
    /// closed it within argv[6] s.
    static let idleAfterOneRequest = prelude + """
        t = connect()
        t.sendall(f"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic {auth}\\r\\n\\r\\n".encode())
        data = b""
        while not data.endswith(b"0\\r\\n\\r\\n"):
            chunk = t.recv(65536)
            if not chunk:
                print("closed-early", data[:80])
                sys.exit(0)
            data += chunk
        t.settimeout(float(sys.argv[6]))
        try:
            print("closed" if t.recv(1) == b"" else "data")
        except socket.timeout:
            print("open")
        """

    /// Holds argv[6] idle TLS connections open until the file argv[7] exists.
    /// Opens argv[6] connections and holds them until the file argv[7] exists; with
    /// argv[8] == "scrape", each first makes one kept-alive scrape (so the gateway
    /// counts it as authenticated) and then waits idle; with "stall", each asks for a
    /// scrape and never reads the answer.
    static let holdConnections = prelude + """
        mode = sys.argv[8] if len(sys.argv) > 8 else ""
        def connect_small_window():
            # A 4 KiB receive buffer: the gateway's writes back up at once.
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            return ctx.wrap_socket(s, server_hostname="localhost")
        conns = [connect_small_window() if mode == "stall" else connect() for _ in range(int(sys.argv[6]))]
        if mode == "stall":
            for t in conns:
                t.sendall(f"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic {auth}\\r\\n\\r\\n".encode())
        if len(sys.argv) > 8 and sys.argv[8] == "scrape":
            for t in conns:
                t.sendall(f"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic {auth}\\r\\n\\r\\n".encode())
                data = b""
                while not data.endswith(b"0\\r\\n\\r\\n"):
                    chunk = t.recv(65536)
                    if not chunk: break
                    data += chunk
                assert data.startswith(b"HTTP/1.1 200"), data[:40]
        print("open", flush=True)
        while not os.path.exists(sys.argv[7]):
            time.sleep(0.05)
        """

    static func arguments(port: Int, pki: TestPKI = .shared) -> [String] {
        ["\(port)", pki.path("ca.crt"), pki.path("client.crt"), pki.path("client.key"),
         "\(TestGateway.user):\(TestGateway.password)"]
    }
}
