import Foundation
import Testing

/// sslyze's check against Mozilla's "intermediate" profile, with the Prometheus client
/// certificate: no protocol, cipher or curve to object to. The only failure allowed is
/// `certificate_path_validation`, which any private dev CA fails.
@Suite struct TLSComplianceTests {
    static var sslyze: String? {
        if let path = ProcessInfo.processInfo.environment["SSLYZE"] { return path }
        let venv = Repository.root.appendingPathComponent(".venv-test/bin/sslyze").path
        if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        return ProcessRunner.has("sslyze") ? "sslyze" : nil
    }

    @Test func mozillaIntermediateFindsNothingButThePrivateCA() async throws {
        guard let sslyze = Self.sslyze else {
            Issue.record("sslyze is not installed: run `make test-deps` (it installs sslyze into .venv-test)")
            return
        }
        let upstream = TestUpstream(body: Array("up 1\n".utf8))
        let upstreamPort = try await upstream.start()
        let gateway = try await TestGateway.start(upstreamURL: "http://127.0.0.1:\(upstreamPort)/metrics")
        let pki = TestPKI.shared
        let result = try await ProcessRunner.run([
            sslyze, "--mozilla_config=intermediate", "--cert", pki.path("client.crt"), "--key", pki.path("client.key"),
            "localhost:\(gateway.port)",
        ], timeout: 300)
        let output = result.stdoutText
        #expect(output.contains("SCANS COMPLETED"), "\(output)\n\(result.stderr)")
        #expect(output.contains("TLS_AES_128_GCM_SHA256"), "the scan negotiated TLS 1.3 with the client certificate")
        let compliance = output.components(separatedBy: "COMPLIANCE AGAINST TLS CONFIGURATION").last ?? ""
        let findings = compliance.split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("* ") }
        #expect(compliance.contains("Compliant") || compliance.contains("Not compliant"), "\(compliance)")
        for finding in findings {
            #expect(finding.hasPrefix("* certificate_path_validation:"), "sslyze objects: \(finding)")
        }
        await gateway.stop()
        await upstream.stop()
    }
}
