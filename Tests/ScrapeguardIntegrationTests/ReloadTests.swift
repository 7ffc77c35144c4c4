import Foundation
import GatewayCore
import GatewayTLS
import Testing

/// Certificates and configuration change under a running `scrapeguard serve`.
@Suite struct ReloadTests {
    /// A Secret volume as the kubelet writes it: files in a timestamped folder, a
    /// `..data` symlink to it, and each file a symlink through `..data`.
    struct SecretVolume {
        let root: URL
        private(set) var generation = 0

        init(root: URL) throws {
            self.root = root
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        }

        /// Writes a new generation with these files and swaps `..data` to it atomically.
        mutating func publish(_ files: [String: String]) async throws {
            generation += 1
            let folder = "..2026_11_24_\(generation)"
            let target = root.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            for (name, source) in files {
                try FileManager.default.copyItem(atPath: source, toPath: target.appendingPathComponent(name).path)
                let link = root.appendingPathComponent(name).path
                if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil {
                    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "..data/\(name)")
                }
            }
            // ln -s to a temporary name, then rename over ..data: what the kubelet does.
            let result = try await ProcessRunner.run([
                "sh", "-c", "cd '\(root.path)' && ln -s '\(folder)' ..data_tmp && mv -T ..data_tmp ..data",
            ])
            #expect(result.status == 0, "\(result.stderr)")
        }
    }

    /// A new server certificate (new key, new serial) from the test CA.
    static func issueServerCertificate(in folder: URL) async throws -> (certificate: String, key: String, serial: String) {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let pki = TestPKI.shared
        let key = folder.appendingPathComponent("server.key").path
        let csr = folder.appendingPathComponent("server.csr").path
        let certificate = folder.appendingPathComponent("server.crt").path
        let extensions = folder.appendingPathComponent("ext.cnf").path
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        for command in [
            ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
            ["openssl", "req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr],
            ["openssl", "x509", "-req", "-in", csr, "-CA", pki.path("ca.crt"), "-CAkey", pki.path("ca.key"),
             "-set_serial", "0x\(String(UInt32.random(in: 0x1000_0000...0xFFFF_FFFF), radix: 16).uppercased())",
             "-days", "2", "-extfile", extensions, "-out", certificate],
        ] {
            let result = try await ProcessRunner.run(command)
            #expect(result.status == 0, "\(command): \(result.stderr)")
        }
        let serial = try await ProcessRunner.run(["openssl", "x509", "-noout", "-serial", "-in", certificate])
        return (certificate, key, serial.stdoutText.replacingOccurrences(of: "serial=", with: "")
            .trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func webConfig(tlsFolder: URL) -> String {
        TestGateway.defaultWebConfig().replacingOccurrences(of: TestPKI.shared.path("server.crt"), with: tlsFolder.appendingPathComponent("tls.crt").path)
            .replacingOccurrences(of: TestPKI.shared.path("server.key"), with: tlsFolder.appendingPathComponent("tls.key").path)
    }

    @Test func kubernetesSecretSwapIsPickedUpWithoutAFailedScrape() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let work = try makeTemporaryFolder("sg-reload")
        var volume = try SecretVolume(root: work.appendingPathComponent("tls"))
        let first = try await Self.issueServerCertificate(in: work.appendingPathComponent("first"))
        let second = try await Self.issueServerCertificate(in: work.appendingPathComponent("second"))
        try await volume.publish(["tls.crt": first.certificate, "tls.key": first.key])
        let (folder, web, config) = try writeServeConfig(
            web: Self.webConfig(tlsFolder: volume.root), gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--reload.interval=200ms"])

        let stop = work.appendingPathComponent("stop").path
        let arguments = TLSClientScripts.arguments(port: serve.port) + [stop]
        async let loop = Task.detached { try await python(TLSClientScripts.scrapeLoop, arguments, timeout: 90) }.value
        // Some scrapes with the first certificate, the swap, then scrapes until one
        // sees the second.
        try await waitForLoop(stop) { count, _ in count >= 5 }
        try await volume.publish(["tls.crt": second.certificate, "tls.key": second.key])
        try await waitForLoop(stop) { _, serial in serial == second.serial }
        _ = FileManager.default.createFile(atPath: stop, contents: Data())
        let result = try await loop
        let fields = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        #expect(fields.count == 3, "\(result.stdoutText) \(result.stderr)")
        #expect(Int(fields[0]) ?? 0 >= 6, "the loop scraped: \(result.stdoutText)")
        #expect(fields[1] == "0", "no scrape failed across the swap: \(result.stdoutText) \(result.stderr)")
        #expect(fields.last.map(String.init) == "\(first.serial),\(second.serial)", "serials seen, in order: \(result.stdoutText)")

        let metrics = try await Curl().get("\(serve.baseURL)/gateway/metrics")
        #expect(metrics.bodyText.contains("scrapeguard_reloads_total{result=\"success\"} 1"), "\(metrics.bodyText)")
        serve.signal(SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(10)) == 0)
        await upstream.stop()
    }

    @Test func aCorruptReplacementKeepsTheOldCertificateServing() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let work = try makeTemporaryFolder("sg-reload")
        var volume = try SecretVolume(root: work.appendingPathComponent("tls"))
        let first = try await Self.issueServerCertificate(in: work.appendingPathComponent("first"))
        try await volume.publish(["tls.crt": first.certificate, "tls.key": first.key])
        let (folder, web, config) = try writeServeConfig(
            web: Self.webConfig(tlsFolder: volume.root), gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--reload.interval=200ms"])
        try await volume.publish(["tls.crt": TestPKI.shared.path("broken.crt"), "tls.key": first.key])
        try await Task.sleep(for: .seconds(1))

        let stop = work.appendingPathComponent("stop").path
        let arguments = TLSClientScripts.arguments(port: serve.port) + [stop]
        async let loop = Task.detached { try await python(TLSClientScripts.scrapeLoop, arguments, timeout: 90) }.value
        try await waitForLoop(stop) { count, _ in count >= 3 }
        _ = FileManager.default.createFile(atPath: stop, contents: Data())
        let result = try await loop
        let fields = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        #expect(fields.count == 3 && fields[1] == "0", "\(result.stdoutText) \(result.stderr)")
        #expect(fields.last.map(String.init) == first.serial, "the old certificate still serves: \(result.stdoutText)")
        #expect(serve.log.contains("reload failed"), "\(serve.log)")
        #expect(serve.log.contains("invalid certificate"), "the reason is logged: \(serve.log)")
        let metrics = try await Curl().get("\(serve.baseURL)/gateway/metrics")
        #expect(metrics.bodyText.contains("scrapeguard_reloads_total{result=\"failure\"} 1"), "counted once: \(metrics.bodyText)")
        serve.signal(SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(10)) == 0)
        await upstream.stop()
    }

    @Test func sighupReloadsUsersAndKeepsEverythingOnABrokenConfig() async throws {
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let (folder, web, config) = try writeServeConfig(gateway: "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n")
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--reload.interval=0"])
        #expect(try await Curl().get("\(serve.baseURL)/metrics").status == 200)

        // New password for the same user, picked up on SIGHUP (no polling in this run).
        let newPassword = "rotated-password"
        let newHash = try #require(BcryptHash.hash(password: newPassword, cost: 5))
        try TestGateway.defaultWebConfig().replacingOccurrences(of: TestGateway.passwordHash, with: newHash)
            .write(toFile: web, atomically: true, encoding: .utf8)
        serve.signal(SIGHUP)
        try await waitForLog(serve, "msg=reloaded")
        #expect(try await Curl(credentials: "\(TestGateway.user):\(newPassword)").get("\(serve.baseURL)/metrics").status == 200)
        #expect(try await Curl().get("\(serve.baseURL)/metrics").status == 401)

        // A broken policy file: refused whole, with the key and the reason; the
        // previous configuration keeps serving.
        try "upstream:\n  url: http://127.0.0.1:\(upstreamPort)/metrics\n  scrape_timeout: forever\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        serve.signal(SIGHUP)
        try await waitForLog(serve, "reload failed")
        #expect(serve.log.contains("upstream.scrape_timeout: invalid duration"), "\(serve.log)")
        #expect(try await Curl(credentials: "\(TestGateway.user):\(newPassword)").get("\(serve.baseURL)/metrics").status == 200)
        serve.signal(SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(10)) == 0)
        await upstream.stop()
    }

    /// The PII key comes from a Secret too: a rotated key (the kubelet's `..data` swap)
    /// is picked up by the file poll, without SIGHUP, and the pseudonyms change.
    @Test func aRotatedPIIKeySecretIsPickedUpByThePoll() async throws {
        let upstream = TestUpstream(body: Array("requests_total{user=\"alice@example.com\"} 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let work = try makeTemporaryFolder("sg-pii-reload")
        var volume = try SecretVolume(root: work.appendingPathComponent("pii"))
        let firstKey = work.appendingPathComponent("first.key").path
        let secondKey = work.appendingPathComponent("second.key").path
        try String(repeating: "a1", count: 32).write(toFile: firstKey, atomically: true, encoding: .utf8)
        try String(repeating: "b2", count: 32).write(toFile: secondKey, atomically: true, encoding: .utf8)
        try await volume.publish(["hmac.key": firstKey])
        let (folder, web, config) = try writeServeConfig(gateway: """
            upstream:
              url: http://127.0.0.1:\(upstreamPort)/metrics
            pii:
              hash_key_file: \(volume.root.appendingPathComponent("hmac.key").path)
              labels:
                - names: [user]
                  action: hash

            """)
        let serve = try await ServeProcess(folder: folder, webConfigFile: web, configFile: config,
                                           extraArguments: ["--reload.interval=200ms"])
        let before = try await Curl().get("\(serve.baseURL)/metrics").bodyText
        #expect(before.hasPrefix("requests_total{user=\"h_") && !before.contains("alice"), "\(before)")
        try await volume.publish(["hmac.key": secondKey])
        var after = before
        for _ in 0..<100 where after == before {
            try await Task.sleep(for: .milliseconds(100))
            after = try await Curl().get("\(serve.baseURL)/metrics").bodyText
        }
        #expect(after != before, "the new key's pseudonym: \(after)")
        #expect(after.hasPrefix("requests_total{user=\"h_") && !after.contains("alice"), "\(after)")
        #expect(serve.log.contains("msg=reloaded"), "\(serve.log)")
        serve.signal(SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(10)) == 0)
        await upstream.stop()
    }

    /// Waits (up to a minute) until the scrape loop's progress satisfies `done`.
    private func waitForLoop(_ stop: String, _ done: (Int, String) -> Bool) async throws {
        for _ in 0..<1200 {
            let progress = (try? String(contentsOfFile: stop + ".count", encoding: .utf8)) ?? ""
            let parts = progress.split(separator: " ").map(String.init)
            if let count = parts.first.flatMap(Int.init), done(count, parts.count > 1 ? parts[1] : "") { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the scrape loop did not get there")
    }

    private func waitForLog(_ serve: ServeProcess, _ text: String) async throws {
        for _ in 0..<100 where !serve.log.contains(text) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(serve.log.contains(text), "\(serve.log)")
    }
}
