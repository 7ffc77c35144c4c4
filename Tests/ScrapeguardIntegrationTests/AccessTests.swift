import Foundation
import GatewayCore
import Testing

/// Who gets in: each refusal is checked on its own, from the client's side and by the
/// reason the gateway counted.
@Suite struct AccessTests {
    @Test func rightCertificateAndPasswordAreServed() async throws {
        try await TestGateway.withGateway { gateway in
            let response = try await Curl().get("\(gateway.baseURL)/metrics")
            #expect(response.status == 200)
            #expect(response.bodyText == "up 1\n")
        }
    }

    /// Each refusal with the reason the gateway counts and the TLS alert the client
    /// reads (a SAN refusal is `bad certificate`, as Go's exporter-toolkit sends it).
    @Test(arguments: [
        ("no client certificate", nil as String?, "peer did not return a certificate", "alert certificate required"),
        ("certificate from another CA", "client-other-ca", "unable to get local issuer certificate", "alert unknown ca"),
        ("SAN not in client_allowed_sans", "client-wrong-san", "client certificate SAN not allowed", "alert bad certificate"),
        ("expired certificate", "client-expired", "certificate has expired", "alert certificate expired"),
    ])
    func certificateRefusals(_ name: String, _ certificate: String?, _ reason: String, _ alert: String) async throws {
        try await TestGateway.withGateway { gateway in
            let response = try await Curl(certificate: certificate).get("\(gateway.baseURL)/metrics")
            #expect(response.exitCode != 0, "\(name): curl got through")
            #expect(response.stderr.contains(alert), "\(name): \(response.stderr)")
            #expect(response.status == 0, "\(name): got HTTP \(response.status)")
            #expect(response.body.isEmpty)
            try await waitFor { gateway.server.handshakeFailuresByReason[reason] == 1 }
            #expect(gateway.server.handshakeFailuresByReason[reason] == 1, "\(gateway.server.handshakeFailuresByReason)")
        }
    }

    @Test func wrongPasswordUnknownUserAndMissingHeaderAre401() async throws {
        try await TestGateway.withGateway { gateway in
            for credentials in ["\(TestGateway.user):wrong", "mallory:\(TestGateway.password)", nil] {
                let response = try await Curl(credentials: credentials).get("\(gateway.baseURL)/metrics")
                #expect(response.status == 401, "\(credentials ?? "no credentials")")
                #expect(response.headers.contains("WWW-Authenticate: Basic realm=\"scrapeguard\""))
                #expect(response.bodyText == "unauthorized\n")
            }
        }
    }

    @Test func malformedAuthorizationIs401() async throws {
        try await TestGateway.withGateway { gateway in
            let response = try await Curl(credentials: nil).get("\(gateway.baseURL)/metrics", extra: ["-H", "Authorization: Basic !!!not-base64"])
            #expect(response.status == 401)
        }
    }

    @Test func bcryptRunsOncePerCredentialTriple() async throws {
        try await TestGateway.withGateway { gateway in
            #expect(gateway.server.authenticator.bcryptComputations == 0)
            for _ in 0..<3 {
                let status = try await Curl().get("\(gateway.baseURL)/metrics").status
                #expect(status == 200)
            }
            #expect(gateway.server.authenticator.bcryptComputations == 1)
            for _ in 0..<2 {
                let status = try await Curl(credentials: "\(TestGateway.user):wrong").get("\(gateway.baseURL)/metrics").status
                #expect(status == 401)
            }
            #expect(gateway.server.authenticator.bcryptComputations == 2)
            // An unknown user costs a bcrypt too (against the fake hash), once.
            let unknownStatus = try await Curl(credentials: "nobody:x").get("\(gateway.baseURL)/metrics").status
            #expect(unknownStatus == 401)
            #expect(gateway.server.authenticator.bcryptComputations == 3)
        }
    }

    @Test func tls11IsRefusedByTheServer() async throws {
        try await TestGateway.withGateway { gateway in
            // SECLEVEL=0 lets the client offer TLS 1.1, so the refusal is the server's.
            try await expectHandshakeRefused(gateway, clientOptions: ["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
                                             reason: "unsupported protocol")
        }
    }

    @Test func noSharedCipherIsRefused() async throws {
        try await TestGateway.withGateway { gateway in
            try await expectHandshakeRefused(gateway, clientOptions: ["-tls1_2", "-cipher", "AES128-SHA"],
                                             reason: "no shared cipher")
        }
    }

    /// `openssl s_client` with the good client certificate and `clientOptions` gets no
    /// session, and the gateway counted the refusal under `reason`.
    private func expectHandshakeRefused(_ gateway: TestGateway, clientOptions: [String], reason: String) async throws {
        let result = try await ProcessRunner.run(
            ["openssl", "s_client", "-connect", "127.0.0.1:\(gateway.port)"] + clientOptions
                + ["-cert", TestPKI.shared.path("client.crt"), "-key", TestPKI.shared.path("client.key")],
            stdin: Data())
        #expect(result.status != 0)
        #expect(result.stdoutText.contains("Cipher is (NONE)"), "no session was negotiated")
        try await waitFor { gateway.server.handshakeFailuresByReason[reason] == 1 }
        #expect(gateway.server.handshakeFailuresByReason[reason] == 1, "\(gateway.server.handshakeFailuresByReason)")
    }

    @Test func tls12AndTls13BothServe() async throws {
        try await TestGateway.withGateway { gateway in
            for version in ["--tlsv1.2", "--tlsv1.3"] {
                let maximum = version == "--tlsv1.2" ? ["--tls-max", "1.2"] : []
                let response = try await Curl().get("\(gateway.baseURL)/metrics", extra: [version] + maximum)
                #expect(response.status == 200, "\(version): \(response.stderr)")
            }
        }
    }

    /// Python's ssl module as a second real client: a resumed TLS 1.3 session still
    /// carries the verified client identity, so the resumed connection is served.
    @Test func resumedSessionKeepsClientVerification() async throws {
        try await TestGateway.withGateway { gateway in
            let script = """
                import base64, socket, ssl, sys
                ctx = ssl.create_default_context(cafile=sys.argv[2])
                ctx.load_cert_chain(sys.argv[3], sys.argv[4])
                auth = base64.b64encode(sys.argv[5].encode()).decode()
                def scrape(session=None):
                    with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
                        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                            tls.sendall(f"GET /metrics HTTP/1.1\\r\\nHost: localhost\\r\\nAuthorization: Basic {auth}\\r\\nConnection: close\\r\\n\\r\\n".encode())
                            data = b""
                            while True:
                                chunk = tls.recv(65536)
                                if not chunk: break
                                data += chunk
                            return data.split(b"\\r\\n", 1)[0].decode(), tls.session, tls.session_reused
                status1, session, _ = scrape()
                status2, _, reused = scrape(session)
                print(status1, status2, reused)
                """
            let pki = TestPKI.shared
            let result = try await ProcessRunner.run([
                "python3", "-c", script, "\(gateway.port)", pki.path("ca.crt"), pki.path("client.crt"), pki.path("client.key"),
                "\(TestGateway.user):\(TestGateway.password)",
            ])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "HTTP/1.1 200 OK HTTP/1.1 200 OK True")
        }
    }
}

/// Waits up to two seconds for a condition the server reaches asynchronously.
func waitFor(_ condition: () -> Bool) async throws {
    for _ in 0..<200 where !condition() {
        try await Task.sleep(for: .milliseconds(10))
    }
}
